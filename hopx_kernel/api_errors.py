"""Control-plane error bodies → :mod:`hopx_kernel.errors` (pure).

Reads both body shapes seen in HopX material (docs/protocol.md §1): the flat
``{"error": "msg", "code": ...}`` of the docs and the nested
``{"error": {"message", "code", "request_id", "details"}}`` the Python SDK parses.

Example:
    >>> e = error_for_status(401, b'{"error": "bad key"}', action="create a sandbox")
    >>> e.line()
    'HopX rejected the API key (bad key). Check HOPX_API_KEY: it may be mistyped, revoked or for another account.'
"""

from __future__ import annotations

import json
from typing import Any, TypedDict

from .errors import (
    ControlPlaneError,
    KeyRejected,
    NotFound,
    RateLimited,
    SandboxExpired,
    ServerUnavailable,
)


class _StatusFields(TypedDict):
    """The keyword arguments every :class:`ControlPlaneError` built here gets."""

    status: int
    code: str | None
    request_id: str | None


def _fields(body: bytes | str | None) -> tuple[str, str | None, str | None, dict[str, Any]]:
    """(message, code, request_id, details) from an error body of either shape."""
    try:
        obj = json.loads(body) if body else {}
    except (ValueError, UnicodeDecodeError):
        text = body.decode("utf-8", "replace") if isinstance(body, bytes) else str(body)
        return " ".join(text.split())[:200], None, None, {}  # an HTML page: one line
    if not isinstance(obj, dict):
        return " ".join(str(obj).split())[:200], None, None, {}
    err = obj.get("error")
    if isinstance(err, dict):
        message = err.get("message") or obj.get("message") or ""
        code = err.get("code") or obj.get("code")
        request_id = err.get("request_id") or obj.get("request_id")
        details = err.get("details") or obj.get("details") or {}
    else:
        message = err or obj.get("message") or ""
        code = obj.get("code")
        request_id = obj.get("request_id")
        details = obj.get("details") or {}
    message = " ".join(str(message).split())  # .line() stays one line
    return message[:500], code, request_id, details if isinstance(details, dict) else {}


def error_for_status(status: int, body: bytes | str | None, *, action: str) -> ControlPlaneError:
    """The error to raise for a failed control-plane call.

    Args:
        status: the HTTP status (>= 400).
        body: the response body.
        action: what we were doing, e.g. ``"create a sandbox"``, for the message.
    """
    message, code, request_id, details = _fields(body)
    said = f" ({message})" if message else ""
    kw: _StatusFields = {"status": status, "code": code, "request_id": request_id}
    if status == 401:
        return KeyRejected(
            f"HopX rejected the API key{said}",
            "Check HOPX_API_KEY: it may be mistyped, revoked or for another account.",
            **kw,
        )
    if status == 404:
        return NotFound(
            f"HopX could not {action}: not found{said}",
            "Check HOPX_TEMPLATE or HOPX_SANDBOX_ID.",
            **kw,
        )
    if status == 410 or code == "SANDBOX_EXPIRED":
        return SandboxExpired(
            f"The sandbox has expired or was deleted{said}",
            "Restart the kernel to get a new sandbox (its state is gone).",
            **kw,
        )
    if status == 429:
        retry = details.get("retry_after_seconds") or details.get("retry_after")
        return RateLimited(
            f"HopX is rate-limiting requests{said}",
            "Wait a minute and run the cell again.",
            retry_after=float(retry) if isinstance(retry, (int, float)) else None,
            **kw,
        )
    if status >= 500:
        return ServerUnavailable(
            f"HopX could not {action}: server error {status}{said}",
            "This is on HopX's side; run the cell again in a minute.",
            **kw,
        )
    if status == 402:
        return ControlPlaneError(
            f"HopX could not {action}: payment required{said}", "Check your HopX plan.", **kw
        )
    return ControlPlaneError(f"HopX could not {action}: HTTP {status}{said}", "", **kw)
