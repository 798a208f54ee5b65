"""A connection file one of whose ports another process already holds."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from jupyter_client.connect import write_connection_file


@contextmanager
def connection_file_with_a_taken_port(folder: Path) -> Iterator[str]:
    """The path of a connection file whose iopub port a socket here holds (bound and
    listening) until the block ends: kernels starting at once race for the ports that
    jupyter_client picked, and the loser finds one taken like this."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        connection, _ = write_connection_file(str(folder / "kernel.json"), iopub_port=taken.getsockname()[1])
        yield connection
