"""Fixtures for the reliability tests: a cloud-mode server behind a fault proxy, kernels."""

from __future__ import annotations

import pytest

from ..support.local_server import start_server
from .proxy import Proxy


@pytest.fixture(scope="module")
def proxied_server():
    """``hopx-kernel serve`` whose sandboxes advertise a proxy as their agent address.

    The control plane is reached directly; every agent call (health, /execute/stream)
    goes through ``server.proxy``. Tokens live 3 s, so every test also crosses expiries.
    """
    proxy = Proxy()
    server = start_server("--public-url", proxy.url, "--token-ttl", "3")
    proxy.target = ("127.0.0.1", int(server.base_url.rsplit(":", 1)[1]))
    server.proxy = proxy
    yield server
    proxy.close()
    assert server.stop() == 0
