"""What one execution is given and gives back, for any language: the signals from the
client side (:class:`RunControl`), the resource caps (:class:`Limits`), how a cell ended
(:class:`CellOutcome`) and the callbacks that send a frame (``Emit``) or ask for input
(``Ask``)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from ... import frames

Emit = Callable[[frames.AgentFrame], Awaitable[None]]
Ask = Callable[[str, bool], Awaitable[str]]


@dataclass(frozen=True)
class Limits:
    """Resource caps applied to every sandbox process (None = no cap)."""

    memory_mb: int | None = None
    max_procs: int | None = None


@dataclass
class CellOutcome:
    """How a cell ended. ``died`` holds the reason when the kernel process died."""

    status: str = "ok"
    data: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    ename: str | None = None
    evalue: str | None = None
    traceback: list[str] | None = None
    timed_out: bool = False
    died: str | None = None
    payload: list | None = None


class RunControl:
    """Signals from the client side to one running execution.

    Args:
        timeout: seconds the execution may run; None or 0 means no limit.
    """

    def __init__(self, timeout: float | None = None) -> None:
        self.timeout = timeout or None
        self.deadline: float | None = None
        self.interrupts = 0
        self.abandoned = False
        #: set once the execution must stop (deadline passed or client gone): from then on
        #: output that cannot be sent at once is dropped instead of waited for
        self.stopping = asyncio.Event()
        self._wake: Callable[[], None] | None = None
        self._timer: asyncio.TimerHandle | None = None

    def start(self, wake: Callable[[], None]) -> None:
        """Called by the runner when the execution starts running.

        The deadline runs on its own timer: it fires even while the runner waits for a
        slow client to take output.
        """
        self._wake = wake
        if self.timeout:
            self.deadline = time.monotonic() + self.timeout
            if self._timer is None:
                self._timer = asyncio.get_running_loop().call_later(self.timeout, self._expire)

    def _expire(self) -> None:
        self._timer = None
        left = (self.deadline - time.monotonic()) if self.deadline is not None else 0.0
        if left > 0:  # moved on (paused at a breakpoint): wait for the new deadline
            self._timer = asyncio.get_running_loop().call_later(left, self._expire)
            return
        self.stopping.set()
        if self._wake:
            self._wake()

    def finish(self) -> None:
        """Called when the execution is over: its deadline timer is not needed any more."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self._wake = None

    def interrupt(self) -> None:
        """Ask for a KeyboardInterrupt in the running code."""
        self.interrupts += 1
        if self._wake:
            self._wake()

    def abandon(self) -> None:
        """The client went away: stop the execution."""
        self.abandoned = True
        self.stopping.set()
        if self._wake:
            self._wake()
