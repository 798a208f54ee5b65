"""Fixtures of the attack suite: a dedicated local server whose memory can be measured."""

from __future__ import annotations

import pytest

from ..support.local_server import start_server


@pytest.fixture(scope="module")
def target():
    """A local sandbox server of its own (the attacks must not disturb other tests)."""
    server = start_server("--pool-size", "1", "--max-sandboxes", "6")
    yield server
    assert server.stop() == 0
