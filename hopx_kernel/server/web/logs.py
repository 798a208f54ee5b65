"""The server's access log, with credentials taken out of query strings. Pure but for
:func:`log_request`.

A client may put a token in the URL (``?token=...``, ``?api_key=...``); the server does
not accept credentials there, but it must not write them to its log either.

Example:
    >>> redact_uri("/files/read?path=a.txt&token=s3cret&X-API-Key=k")
    '/files/read?path=a.txt&token=***&X-API-Key=***'
    >>> redact_uri("/health")
    '/health'
"""

from __future__ import annotations

import logging
import re
from typing import Any

from ..domain.environment import is_secret_name

access_log = logging.getLogger("tornado.access")

_PARAM = re.compile(r"([^&=;]*)=([^&;]*)")
#: Query parameter names that carry a credential besides the secret-looking ones.
#: Longest URI written to the log (a hostile client's 5 kB paths must not flood it).
MAX_LOGGED_URI = 300
CREDENTIAL_PARAMS = frozenset({"auth", "authorization", "access_token", "sig", "signature"})


def _redact(match: re.Match) -> str:
    name = match.group(1)
    if is_secret_name(name.replace("-", "_")) or name.lower() in CREDENTIAL_PARAMS:
        return f"{name}=***"
    return match.group(0)


def redact_uri(uri: str) -> str:
    """``uri`` with the values of credential-like query parameters replaced by ``***``."""
    path, sep, query = uri.partition("?")
    if not sep:
        return uri
    return f"{path}?{_PARAM.sub(_redact, query)}"


def log_request(handler: Any) -> None:
    """Tornado's ``log_function``: its access-log line, with :func:`redact_uri`."""
    status = handler.get_status()
    if status < 400:
        log = access_log.info
    elif status < 500:
        log = access_log.warning
    else:
        log = access_log.error
    request = handler.request
    uri = redact_uri(request.uri)
    if len(uri) > MAX_LOGGED_URI:
        uri = uri[:MAX_LOGGED_URI] + f"...({len(uri)} chars)"
    log(
        "%d %s %s (%s) %.2fms",
        status,
        request.method,
        uri,
        request.remote_ip,
        1000.0 * request.request_time(),
    )
