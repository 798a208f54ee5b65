"""nbclient as the suites run it: with a guard for nbclient's Output-widget hang.

nbclient's stand-in for the Output widget (``nbclient.output_widget.OutputWidget``) sends
``comm_msg`` on the shell socket from the task that reads iopub, while another task polls
that same socket for the cell's ``execute_reply``. The send lets libzmq take the socket's
edge-triggered "readable" signal, so a reply that lands at that moment is never noticed:
the poll sleeps until its timeout, or forever without one (nbclient issue 312, open; any
kernel, a local ipykernel included; how often depends on how closely the reply follows
the widget's output). Polling the shell socket in short slices looks at the socket again
at the end of each slice, so such a reply is read within :data:`SLICE` seconds.
"""

from __future__ import annotations

import time
from queue import Empty
from typing import Any

import nbclient

#: Longest a reply can wait unnoticed in the shell socket.
SLICE = 0.25


def sliced(get_msg):
    """``get_msg(timeout)`` of an async channel, polling at most SLICE seconds at a time."""

    async def get_msg_sliced(timeout: float | None = None) -> dict[str, Any]:
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            left = SLICE if deadline is None else max(0.0, min(SLICE, deadline - time.monotonic()))
            try:
                return await get_msg(timeout=left)
            except Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise

    return get_msg_sliced


class NotebookClient(nbclient.NotebookClient):
    """nbclient's NotebookClient, its shell socket polled in slices (see the module)."""

    async def async_start_new_kernel_client(self):
        kc = await super().async_start_new_kernel_client()
        kc.shell_channel.get_msg = sliced(kc.shell_channel.get_msg)
        return kc
