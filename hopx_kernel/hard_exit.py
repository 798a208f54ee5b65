"""Leave a kernel process at once, for both kernels (this package's and the sandbox's).

ipykernel's ``close()`` at interpreter exit waits for ever on its ZMQ context while a
socket is open (one bound, or one that failed to bind: a local ipykernel hangs there
too). A kernel that hangs instead of dying keeps what it started, and whoever started it
(jupyter_client, the local server) waits for it to answer or die.
"""

from __future__ import annotations

import logging
import os
import sys


def exit_now(status: int) -> None:
    """Flush stdout, stderr and the logs, then end the process with ``status``."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass
    logging.shutdown()
    os._exit(status)
