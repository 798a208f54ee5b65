"""JSON bodies the server answers with: error bodies and timestamps. Pure.

Example:
    >>> rfc3339(0)
    '1970-01-01T00:00:00.000000Z'
    >>> control_error_body("NOT_FOUND", "no such sandbox", "req_1")["error"]["code"]
    'NOT_FOUND'
"""

from __future__ import annotations

import secrets
import time
from datetime import datetime, timezone
from typing import Any


def rfc3339(epoch: float) -> str:
    """An RFC 3339 UTC timestamp with ``Z`` and exactly 6 fractional digits."""
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_rfc3339() -> str:
    """The current time as :func:`rfc3339`."""
    return rfc3339(time.time())


def new_request_id() -> str:
    """A request id for error bodies and logs."""
    return "req_" + secrets.token_hex(8)


def control_error_body(
    code: str, message: str, request_id: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A control-plane error body readable both nested (Python SDK) and flat (JS SDK)."""
    return {
        "error": {
            "message": message,
            "code": code,
            "request_id": request_id,
            "details": details or {},
        },
        "message": message,
        "code": code,
        "request_id": request_id,
    }


def agent_error_body(
    code: str, message: str, request_id: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """An agent-plane error body (``main.ErrorResponse``): flat ``error`` string."""
    body: dict[str, Any] = {
        "error": message,
        "code": code,
        "message": message,
        "request_id": request_id,
        "timestamp": now_rfc3339(),
    }
    if details:
        body["details"] = details
    return body
