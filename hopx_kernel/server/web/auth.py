"""Credential headers and loopback checks. Pure: strings in, answers out.

Example:
    >>> api_key_from_headers({"Authorization": "Bearer abc"})
    'abc'
    >>> is_loopback_host("127.0.0.1:8888"), is_loopback_host("evil.example")
    (True, False)
"""

from __future__ import annotations

from collections.abc import Mapping
from urllib.parse import urlsplit

from ...loopback import is_loopback_name


def bearer_token(headers: Mapping[str, str]) -> str | None:
    """The token of an ``Authorization: Bearer <token>`` header, or None."""
    value = headers.get("Authorization") or ""
    scheme, _, token = value.strip().partition(" ")
    if scheme.lower() != "bearer":
        return None
    return token.strip() or None


def api_key_from_headers(headers: Mapping[str, str]) -> str | None:
    """The API key of a control-plane request: ``X-API-Key`` first, then Bearer."""
    key = (headers.get("X-API-Key") or "").strip()
    return key or bearer_token(headers)


def is_loopback_host(host_header: str | None) -> bool:
    """Whether a ``Host`` header names this machine's loopback (any port).

    Accepts ``127.x.x.x``, ``localhost`` and ``[::1]``; anything else (including a
    missing header) is refused, which guards against DNS rebinding.
    """
    if not host_header:
        return False
    try:
        hostname = urlsplit("//" + host_header.strip()).hostname
    except ValueError:
        return False
    return hostname is not None and bool(hostname) and is_loopback_name(hostname)


def is_loopback_origin(origin: str | None) -> bool:
    """Whether a browser ``Origin`` is an http(s) page served from loopback."""
    if not origin:
        return False
    try:
        parts = urlsplit(origin.strip())
        hostname = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError:
        return False
    return (
        parts.scheme in ("http", "https")
        and hostname is not None
        and bool(hostname)
        and is_loopback_name(hostname)
    )


def is_loopback_bind(host: str) -> bool:
    """Whether ``--host`` is an address the server may bind (loopback only)."""
    return is_loopback_name(host)
