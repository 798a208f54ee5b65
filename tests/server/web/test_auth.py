"""Credential headers and loopback checks (hopx_kernel/server/web/auth.py)."""

from __future__ import annotations

import pytest

from hopx_kernel.server.web import auth


@pytest.mark.parametrize(
    "headers,key",
    [
        ({"X-API-Key": "k1"}, "k1"),
        ({"Authorization": "Bearer k2"}, "k2"),
        ({"Authorization": "bearer   k3 "}, "k3"),
        ({"X-API-Key": " ", "Authorization": "Bearer k4"}, "k4"),
        ({"Authorization": "Basic abc"}, None),
        ({"Authorization": "Bearer"}, None),
        ({}, None),
    ],
)
def test_api_key_from_headers(headers, key):
    assert auth.api_key_from_headers(headers) == key


@pytest.mark.parametrize(
    "host,ok",
    [
        ("127.0.0.1", True),
        ("127.0.0.1:8888", True),
        ("127.4.5.6:1", True),
        ("localhost:80", True),
        ("LOCALHOST", True),
        ("[::1]:9000", True),
        ("[::1]", True),
        ("evil.example", False),
        ("evil.example:8888", False),
        ("10.0.0.1", False),
        ("localhost.evil.example", False),
        ("", False),
        (None, False),
        ("[::1", False),
    ],
)
def test_loopback_host(host, ok):
    assert auth.is_loopback_host(host) is ok


@pytest.mark.parametrize(
    "origin,ok",
    [
        ("http://127.0.0.1:8888", True),
        ("https://localhost", True),
        ("http://[::1]:3000", True),
        ("http://evil.example", False),
        ("null", False),
        ("file://", False),
        ("ftp://127.0.0.1", False),
        ("http://127.0.0.1:notaport", False),
        (None, False),
    ],
)
def test_loopback_origin(origin, ok):
    assert auth.is_loopback_origin(origin) is ok


def test_loopback_bind():
    assert auth.is_loopback_bind("127.0.0.1") and auth.is_loopback_bind("localhost")
    assert not auth.is_loopback_bind("0.0.0.0") and not auth.is_loopback_bind("192.168.1.2")
