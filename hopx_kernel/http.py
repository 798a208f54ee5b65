"""One HTTP call to HopX — control plane or agent — with every failure translated.

The single HTTP call path (the request goes out through a connector,
:mod:`.transport`: tornado's client, or a test's in-memory fake): no HTTP answer at all becomes
:class:`~hopx_kernel.errors.Unreachable`, an error status the matching
:class:`~hopx_kernel.errors.ControlPlaneError` (via :mod:`.api_errors`), and a body that
is not JSON :class:`~hopx_kernel.errors.ServerUnavailable`.
"""

from __future__ import annotations

import asyncio
import json
import ssl
from typing import Any
from urllib.parse import urlsplit

from tornado.httpclient import HTTPClientError, HTTPRequest, HTTPResponse

from .api_errors import error_for_status
from .errors import ServerUnavailable, Unreachable
from .tls import tls_error
from .transport import Connector, Transport


def new_client() -> Connector:
    """The real connector: tornado's HTTP client (one of its own) and websockets."""
    return Connector()


async def fetch(
    client: Transport,
    method: str,
    url: str,
    *,
    headers: dict[str, str],
    body: bytes | str | None = None,
    timeout: float,
    action: str,
    where: str,
    hint: str,
    ssl_context: ssl.SSLContext | None = None,
) -> HTTPResponse:
    """Send one request and return the response if its status is below 400.

    Args:
        client: the connector the request goes out through.
        action: what the call does, for messages ("create a sandbox").
        where: who it goes to, for messages ("HopX at https://api.hopx.dev").
        hint: what to do when there is no answer at all.
        ssl_context: how https is verified (default: tornado's, the system store).

    Raises:
        TlsError: the TLS handshake failed (the certificate is named in the message).
        Unreachable: no HTTP answer (refused, reset, timed out).
        ControlPlaneError: an error status; the subclass says which.
    """
    request = HTTPRequest(
        url,
        method=method,
        headers=headers,
        body=body,
        connect_timeout=min(timeout, 10.0),
        request_timeout=timeout,
        follow_redirects=False,
        allow_nonstandard_methods=True,
        ssl_options=ssl_context if url.startswith("https:") else None,
    )
    try:
        response = await client.fetch(request)
    except HTTPClientError as exc:  # tornado 6 raises these (599: timeout, reset) even so
        reason = "timed out" if exc.code == 599 and "Timeout" in str(exc) else exc.__class__.__name__
        if exc.response is None or exc.code == 599:
            raise Unreachable(f"Could not reach {where} to {action} ({reason})", hint) from exc
        response = exc.response
    except (OSError, asyncio.TimeoutError) as exc:
        tls = tls_error(exc, _netloc(url))
        if tls is not None:
            raise tls from exc
        raise Unreachable(f"Could not reach {where} to {action} ({exc.__class__.__name__})", hint) from exc
    if response.code == 599:  # tornado's code for "no HTTP answer"
        error = response.error
        tls = tls_error(error, _netloc(url)) if error is not None else None
        if tls is not None:
            raise tls
        reason = (
            "timed out" if "Timeout" in str(error) else (error.__class__.__name__ if error else "no answer")
        )
        raise Unreachable(f"Could not reach {where} to {action} ({reason})", hint)
    if response.code >= 400:
        raise error_for_status(response.code, response.body, action=action)
    return response


def _netloc(url: str) -> str:
    return urlsplit(url).netloc or url


def json_body(response: HTTPResponse, *, action: str, where: str) -> Any:
    """The response's JSON (``{}`` for an empty body)."""
    try:
        return json.loads(response.body) if response.body else {}
    except ValueError as exc:
        raise ServerUnavailable(
            f"{where} answered {action} with something that is not JSON",
            "Check that the URL points at a HopX API.",
            status=response.code,
        ) from exc
