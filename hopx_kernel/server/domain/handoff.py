"""A kernel restart that keeps the local server (embedded mode, docs/protocol.md §1.1).

A server started with ``--parent-pid`` ends when that process ends. On a restart the
kernel process ends too, and the next one would start a server and a sandbox kernel all
over again (~0.5 s of the restart). Instead the ending kernel *offers* its server (its
sandbox deleted, a fresh one started ahead), and the next kernel process *adopts* it: the
server then watches the new process. An offer nobody adopts within the grace ends the
server as the parent's end would have.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..server_errors import ServerError

#: Seconds an offered server waits for the next kernel process after its parent ended.
GRACE = 30.0
#: How the offering kernel's note file is named (``hopx_kernel/restart_handoff.py``).
NOTE_SUFFIX = ".hopx-server.json"


@dataclass
class Handoff:
    """Which process the server lives for, and a pending offer.

    Example:
        >>> h = Handoff(parent_pid=100)
        >>> h.offer(now=0.0)
        >>> h.keep_running(parent_alive=False, now=5.0)
        True
        >>> h.adopt(200, now=6.0)
        >>> h.parent_pid, h.keep_running(parent_alive=False, now=7.0)
        (200, False)
    """

    parent_pid: int | None
    grace: float = GRACE
    #: monotonic time until which an offer stands (None: no offer)
    offered_until: float | None = None
    #: the file where the offering kernel said where the server is (removed by the server
    #: when it ends unadopted, so no key stays behind)
    note: Path | None = None

    def offer(self, now: float, note: object = None) -> None:
        """The parent is about to end and hand the server to its successor; ``note``: the
        file that says so (only a ``*.hopx-server.json`` path is remembered)."""
        self.offered_until = now + self.grace
        self.note = Path(note) if isinstance(note, str) and note.endswith(NOTE_SUFFIX) else None

    def unclaimed_note(self) -> Path | None:
        """The offer's file if nobody adopted the server (to remove as it ends)."""
        return self.note if self.offered_until is not None else None

    def adopt(self, pid: int, now: float) -> None:
        """``pid`` takes the server over.

        Raises:
            ServerError: 409 when no offer stands (the server belongs to a live kernel).
        """
        if self.offered_until is None or now > self.offered_until:
            raise ServerError(409, "CONFLICT", "this server was not offered for adoption")
        if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 1:
            raise ServerError(400, "INVALID_REQUEST", "'parent_pid' must be a process id")
        self.parent_pid = pid
        self.offered_until = None
        self.note = None

    def keep_running(self, parent_alive: bool, now: float) -> bool:
        """Whether the server goes on, given whether its parent still runs."""
        if parent_alive:
            return True
        return self.offered_until is not None and now <= self.offered_until


__all__ = ["GRACE", "Handoff"]
