"""The server's errors (hopx_kernel/server/server_errors.py)."""

from __future__ import annotations

from hopx_kernel.errors import HopxKernelError
from hopx_kernel.server.server_errors import PathNotAllowed, ServerError


def test_server_errors_share_the_root():
    assert issubclass(ServerError, HopxKernelError)
    assert issubclass(PathNotAllowed, ServerError)
