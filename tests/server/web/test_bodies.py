"""Error bodies (hopx_kernel/server/web/bodies.py)."""

from __future__ import annotations

from hopx_kernel.server.web.bodies import agent_error_body, control_error_body


def test_error_bodies():
    body = control_error_body("NOT_FOUND", "gone", "req_1", {"a": 1})
    assert body["error"] == {
        "message": "gone",
        "code": "NOT_FOUND",
        "request_id": "req_1",
        "details": {"a": 1},
    }
    assert body["message"] == "gone" and body["code"] == "NOT_FOUND"
    agent = agent_error_body("PATH_NOT_ALLOWED", "no", "req_2")
    assert agent["error"] == "no" and agent["message"] == "no" and agent["code"] == "PATH_NOT_ALLOWED"
    assert agent["timestamp"].endswith("Z")
