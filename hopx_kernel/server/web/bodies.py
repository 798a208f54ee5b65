"""JSON bodies the server answers with: error bodies. Pure but for their timestamp.

Example:
    >>> control_error_body("NOT_FOUND", "no such sandbox", "req_1")["error"]["code"]
    'NOT_FOUND'
"""

from __future__ import annotations

import secrets
from typing import Any

from ..domain.timestamps import now_rfc3339


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
