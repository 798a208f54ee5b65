"""The sandbox's IPython kernel process: a start that cannot bind its ports ends at once."""

from __future__ import annotations

import subprocess
import sys

from ...support.ports import connection_file_with_a_taken_port


def test_a_sandbox_kernel_that_cannot_bind_its_ports_exits_at_once(tmp_path):
    # Over TCP (a --root too deep for Unix socket paths) another process may take a port
    # between jupyter_client choosing it and the kernel binding it. ipykernel then hangs
    # at exit for ever; the server waits for the kernel to answer or die, so it must die
    # (and the server starts it again on fresh ports: ipython.py).
    with connection_file_with_a_taken_port(tmp_path) as connection:
        done = subprocess.run(
            [sys.executable, "-m", "hopx_kernel.server.runtime.kernel_launcher", "-f", connection],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert "Address already in use" in done.stderr, done.stderr
