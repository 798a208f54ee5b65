"""Fixtures shared by the local server's tests."""

from __future__ import annotations

import pytest

from tests.support.server_helpers import create, delete


@pytest.fixture(scope="module")
def sandbox(local_server):
    """One sandbox for the whole test module (a module whose tests must not see each other's
    state defines its own per-test ``sandbox``)."""
    sb = create(local_server)
    yield sb
    delete(local_server, sb)
