"""Kernels for the kernel tests: started from the installed kernelspec, embedded mode."""

from __future__ import annotations

import pytest

from ..support.kernels import start_kernel, stop_kernel


@pytest.fixture(scope="module")
def kernel():
    """One embedded-mode kernel shared by a test module: (manager, client)."""
    km, kc = start_kernel()
    yield km, kc
    stop_kernel(km, kc)


@pytest.fixture
def kc(kernel):
    return kernel[1]
