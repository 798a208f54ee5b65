"""Fixtures of the attack suite: a dedicated local server whose memory can be measured."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from local_server_process import start_server  # noqa: E402


@pytest.fixture(scope="module")
def target():
    """A local sandbox server of its own (the attacks must not disturb other tests)."""
    server = start_server("--pool-size", "1", "--max-sandboxes", "6")
    yield server
    assert server.stop() == 0
