"""The sandbox's IPython kernel process: a start that cannot bind its ports ends at once."""

from __future__ import annotations

import socket
import subprocess
import sys

from jupyter_client.connect import write_connection_file


def test_a_sandbox_kernel_that_cannot_bind_its_ports_exits_at_once(tmp_path):
    # Over TCP (a --root too deep for Unix socket paths) another process may take a port
    # between jupyter_client choosing it and the kernel binding it. ipykernel then hangs
    # at exit for ever; the server waits for the kernel to answer or die, so it must die
    # (and the server starts it again on fresh ports: ipython.py).
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    connection, _ = write_connection_file(str(tmp_path / "kernel.json"), iopub_port=taken.getsockname()[1])
    try:
        done = subprocess.run(
            [sys.executable, "-m", "hopx_kernel.server.runtime.kernel_launcher", "-f", connection],
            capture_output=True,
            text=True,
            timeout=60,
        )
    finally:
        taken.close()
    assert done.returncode == 1
    assert "Address already in use" in done.stderr, done.stderr
