"""Pure pieces of the control-plane and agent clients: timestamps, sandbox objects, URLs."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from hopx_kernel.agent import ws_url
from hopx_kernel.controlplane import SandboxInfo, parse_time

UTC = timezone.utc


@pytest.mark.parametrize(
    "text, expected",
    [
        ("2025-03-01T12:30:00Z", datetime(2025, 3, 1, 12, 30, tzinfo=UTC)),
        ("2025-03-01T12:30:00.5Z", datetime(2025, 3, 1, 12, 30, 0, 500000, tzinfo=UTC)),
        ("2025-03-01T12:30:00.123456Z", datetime(2025, 3, 1, 12, 30, 0, 123456, tzinfo=UTC)),
        ("2025-03-01T12:30:00.123456789Z", datetime(2025, 3, 1, 12, 30, 0, 123456, tzinfo=UTC)),
        ("2025-03-01T12:30:00+02:00", datetime(2025, 3, 1, 10, 30, tzinfo=UTC)),
        ("2025-03-01T12:30:00.123456789+02:00", datetime(2025, 3, 1, 10, 30, 0, 123456, tzinfo=UTC)),
        ("2025-03-01T12:30:00.25-05:30", datetime(2025, 3, 1, 18, 0, 0, 250000, tzinfo=UTC)),
        ("2025-03-01T12:30:00", datetime(2025, 3, 1, 12, 30, tzinfo=UTC)),  # no zone: UTC
    ],
)
def test_parse_time(text, expected):
    parsed = parse_time(text)
    assert parsed == expected
    assert parsed.utcoffset() is not None


def test_parse_time_keeps_the_offset():
    assert parse_time("2025-03-01T12:30:00.1+02:00").utcoffset() == timedelta(hours=2)


@pytest.mark.parametrize(
    "value",
    [None, "", "soon", "2025-13-01T00:00:00Z", "2025-03-01T25:00:00Z", "12:30 yesterday", 1700000000, {}],
)
def test_parse_time_garbage_is_none(value):
    assert parse_time(value) is None


def test_sandbox_info_from_json():
    info = SandboxInfo.from_json(
        {
            "id": "sbx_1",
            "status": "running",
            "public_host": "https://7777-sbx_1.us-east.vms.hopx.dev/",
            "direct_url": "https://other",
            "auth_token": "tok_SECRET",
            "token_expires_at": "2025-03-01T13:00:00Z",
            "expires_at": "2025-03-01T14:00:00.123456789Z",
            "created_at": "2025-03-01T12:00:00Z",
            "template_name": "code-interpreter",
        }
    )
    assert info.id == "sbx_1" and info.status == "running"
    assert info.public_host == "https://7777-sbx_1.us-east.vms.hopx.dev"
    assert info.auth_token == "tok_SECRET"
    assert info.token_expires_at == datetime(2025, 3, 1, 13, tzinfo=UTC)
    assert info.expires_at == datetime(2025, 3, 1, 14, 0, 0, 123456, tzinfo=UTC)
    assert info.template_name == "code-interpreter"
    assert "tok_SECRET" not in repr(info)
    assert "sbx_1" in repr(info)


def test_sandbox_info_falls_back_to_direct_url():
    info = SandboxInfo.from_json(
        {"sandbox_id": "sbx_2", "direct_url": "http://127.0.0.1:9000/", "public_host": ""}
    )
    assert (info.id, info.public_host) == ("sbx_2", "http://127.0.0.1:9000")
    assert info.status == "unknown"
    assert info.auth_token is None and info.expires_at is None


@pytest.mark.parametrize(
    "host, url",
    [
        ("https://7777-sbx.vms.hopx.dev", "wss://7777-sbx.vms.hopx.dev/execute/stream"),
        ("http://127.0.0.1:8123", "ws://127.0.0.1:8123/execute/stream"),
        ("https://host.example:8443/sandboxes/sbx_1/", "wss://host.example:8443/execute/stream"),
        ("http://[::1]:9000/x", "ws://[::1]:9000/execute/stream"),
    ],
)
def test_ws_url(host, url):
    assert ws_url(host, "/execute/stream") == url


def test_compression_is_off_only_on_loopback():
    from hopx_kernel.loopback import is_loopback_url as is_loopback

    assert is_loopback("http://127.0.0.1:8000")
    assert is_loopback("http://localhost:1")
    assert is_loopback("http://[::1]:80")
    assert not is_loopback("https://7777-abc.eu.vms.hopx.dev")
    assert not is_loopback("http://127.evil.example:80")  # a name, not an address
