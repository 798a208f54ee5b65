"""Control-plane error bodies → named errors with one-line messages."""

from __future__ import annotations

import pytest

from hopx_kernel.api_errors import error_for_status
from hopx_kernel.errors import (
    ControlPlaneError,
    KeyRejected,
    NotFound,
    RateLimited,
    SandboxExpired,
    ServerUnavailable,
)

FLAT = b'{"error": "Invalid API key", "code": "UNAUTHORIZED", "request_id": "req_1"}'
NESTED = (
    b'{"error": {"message": "Invalid API key", "code": "UNAUTHORIZED", "request_id": "req_2",'
    b' "details": {}}, "message": "Invalid API key", "code": "UNAUTHORIZED"}'
)


@pytest.mark.parametrize("body, request_id", [(FLAT, "req_1"), (NESTED, "req_2"), (FLAT.decode(), "req_1")])
def test_flat_and_nested_bodies(body, request_id):
    error = error_for_status(401, body, action="create a sandbox")
    assert isinstance(error, KeyRejected)
    assert (error.status, error.code, error.request_id) == (401, "UNAUTHORIZED", request_id)
    assert error.line() == (
        "HopX rejected the API key (Invalid API key). "
        "Check HOPX_API_KEY: it may be mistyped, revoked or for another account."
    )


def test_nested_message_only_at_top_level():
    error = error_for_status(
        404, b'{"error": {"code": "NOT_FOUND"}, "message": "no such template"}', action="create a sandbox"
    )
    assert error.message == "HopX could not create a sandbox: not found (no such template)"
    assert error.code == "NOT_FOUND"


@pytest.mark.parametrize("body", [None, b"", "", b"[]"])
def test_empty_bodies(body):
    error = error_for_status(500, body, action="get the sandbox")
    assert isinstance(error, ServerUnavailable)
    assert error.code is None and error.request_id is None
    assert "server error 500" in error.line()


def test_non_json_html_body_stays_one_line():
    page = b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\n<center>nginx</center>\n</body>\n</html>\n"
    error = error_for_status(502, page, action="create a sandbox")
    assert isinstance(error, ServerUnavailable)
    assert "\n" not in error.line() and "\r" not in error.line()
    assert "502 Bad Gateway" in error.line()
    assert error.line().endswith("This is on HopX's side; run the cell again in a minute.")


def test_non_json_bytes_that_are_not_utf8():
    error = error_for_status(503, b"\xff\xfe busy", action="create a sandbox")
    assert "busy" in error.line()


def test_json_message_with_newlines_stays_one_line():
    error = error_for_status(
        400, b'{"error": "bad request:\\n  timeout_seconds must be > 0"}', action="create a sandbox"
    )
    assert "\n" not in error.line()
    assert "timeout_seconds must be > 0" in error.line()


@pytest.mark.parametrize(
    "status, cls, ename, hint",
    [
        (401, KeyRejected, "HopxAuthError", "Check HOPX_API_KEY"),
        (404, NotFound, "HopxNotFound", "Check HOPX_TEMPLATE or HOPX_SANDBOX_ID"),
        (410, SandboxExpired, "SandboxExpired", "Restart the kernel"),
        (429, RateLimited, "HopxRateLimited", "Wait a minute"),
        (500, ServerUnavailable, "HopxServerError", "run the cell again"),
        (502, ServerUnavailable, "HopxServerError", "run the cell again"),
        (503, ServerUnavailable, "HopxServerError", "run the cell again"),
        (402, ControlPlaneError, "HopxAPIError", "Check your HopX plan"),
    ],
)
def test_each_status(status, cls, ename, hint):
    error = error_for_status(
        status, b'{"error": "nope", "code": "C", "request_id": "r"}', action="create a sandbox"
    )
    assert type(error) is cls
    assert error.ename == ename
    assert (error.status, error.code, error.request_id) == (status, "C", "r")
    line = error.line()
    assert "\n" not in line
    assert "(nope)" in line
    assert hint in line


def test_other_status():
    error = error_for_status(418, b'{"error": "teapot"}', action="delete the sandbox")
    assert type(error) is ControlPlaneError
    assert error.line() == "HopX could not delete the sandbox: HTTP 418 (teapot)"


def test_expired_code_on_other_status():
    error = error_for_status(400, b'{"error": {"message": "gone", "code": "SANDBOX_EXPIRED"}}', action="x")
    assert isinstance(error, SandboxExpired)


@pytest.mark.parametrize(
    "body, retry",
    [
        (b'{"error": {"message": "slow down", "details": {"retry_after_seconds": 12}}}', 12.0),
        (b'{"error": "slow down", "details": {"retry_after_seconds": 1.5}}', 1.5),
        (b'{"error": "slow down", "details": {"retry_after": 3}}', 3.0),
        (b'{"error": "slow down", "details": {"retry_after_seconds": "soon"}}', None),
        (b'{"error": "slow down"}', None),
    ],
)
def test_rate_limit_retry_after(body, retry):
    error = error_for_status(429, body, action="create a sandbox")
    assert isinstance(error, RateLimited)
    assert error.retry_after == retry
    assert error.line() == "HopX is rate-limiting requests (slow down). Wait a minute and run the cell again."
