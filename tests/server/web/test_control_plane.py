"""Parsing a create request (hopx_kernel/server/web/control_plane.py)."""

from __future__ import annotations

import pytest

from hopx_kernel.server.server_errors import ServerError
from hopx_kernel.server.web.control_plane import parse_create


def test_parse_create():
    assert parse_create({})["template_name"] == "code-interpreter"
    assert parse_create({"template_name": "python"})["template_name"] == "code-interpreter"
    assert parse_create({"template_id": "code-interpreter", "timeout_seconds": 5}) == {
        "template_name": "code-interpreter",
        "timeout_seconds": 5,
        "internet_access": True,
        "env_vars": {},
    }
    with pytest.raises(ServerError) as info:
        parse_create({"template_name": "ubuntu"})
    assert info.value.status == 404 and info.value.code == "TEMPLATE_NOT_FOUND"
    assert "code-interpreter" in info.value.message
    for bad in (
        {"timeout_seconds": "5"},
        {"timeout_seconds": True},
        {"internet_access": 1},
        {"env_vars": {"A": 1}},
    ):
        with pytest.raises(ServerError) as info:
            parse_create(bad)
        assert info.value.status == 400
