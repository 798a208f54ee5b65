"""``GET /execute/stream``: the WebSocket execution endpoint (docs/protocol.md §2.1, §2.2).

One connection carries one execution: the client's first frame is ``execute``; the
server answers with output frames, one ``result``, ``complete`` and a 1000 close. An
execute frame that asks for extensions keeps the connection open after ``complete`` for
the next ``execute`` (docs/protocol.md §2.5 [ext]); an idle connection is closed with 1000
("idle") after ``ServerState.stream_idle_timeout`` seconds.
While it runs the client may send ``interrupt`` and ``input_reply`` [ext]. Every bad
frame is answered with an ``error`` frame and never disturbs the running execution;
a bad frame *before* any ``execute`` also ends the connection (``complete{false}``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

from tornado.websocket import WebSocketClosedError

from .. import frames
from ..errors import FrameError
from ..frames import AgentError, Complete, Execute, InputReply, InputRequest, Interrupt, hopx_frames
from .base import SandboxWebSocket
from .execution import as_run, execute, timestamped
from .ipython import RunControl

if TYPE_CHECKING:
    from .sandbox import Sandbox

log = logging.getLogger(__name__)


class PlainEmit:
    """Wraps an emit so a client without extensions gets exactly HopX's frames."""

    def __init__(self, emit) -> None:
        self._emit = emit
        self.timed_out = False

    async def __call__(self, frame: frames.AgentFrame) -> None:
        if isinstance(frame, AgentError) and frame.code == "EXECUTION_TIMEOUT":
            self.timed_out = True
        for out in hopx_frames(frame, timed_out=self.timed_out):
            await self._emit(out)


class StreamHandler(SandboxWebSocket):
    """One WebSocket connection to one sandbox (found by its bearer token)."""

    def initialize(self, state: Any) -> None:
        self.state = state
        self.sandbox: Sandbox | None = None  # looked up in get(), before the socket opens
        self._task: asyncio.Task | None = None
        self._control: RunControl | None = None
        self._pending_input: asyncio.Future | None = None
        self._done = False
        self._idle: asyncio.TimerHandle | None = None  # closes a reused socket left idle
        self._extensions = False

    # ------------------------------------------------------------ handshake


    def open(self, *args: Any, **kwargs: Any) -> None:
        # Frames are small and latency-bound: without TCP_NODELAY, Nagle's algorithm holds
        # ``complete`` behind ``result`` until the client's delayed ACK (~40 ms per cell).
        self.set_nodelay(True)

    # ------------------------------------------------------------ sending

    async def emit(self, frame: frames.AgentFrame) -> None:
        """Send one frame; a connection that is gone is not an error here."""
        if self.ws_connection is None or self.ws_connection.is_closing():
            return
        try:
            data = frames.encode(frame, timestamped(frame))
            await self.write_message(data, binary=isinstance(data, bytes))
        except WebSocketClosedError:
            pass

    async def _refuse(self, message: str, code: str) -> None:
        """Answer a bad frame; before any execution it also ends the connection."""
        await self.emit(AgentError(message, code))
        if self._task is None and not self._done:
            self._done = True
            await self.emit(Complete(False))
            self.close(1000)

    # ------------------------------------------------------------ receiving

    async def on_message(self, message: str | bytes) -> None:
        if self._done:
            return
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        size = len(message) if isinstance(message, bytes) else len(message.encode("utf-8"))
        if size > frames.MAX_FRAME_BYTES:
            await self._refuse(f"frame of {size} bytes is larger than the 1 MiB limit",
                               "INVALID_REQUEST")
            return
        try:
            frame = frames.parse_client_frame(message)
        except FrameError as exc:
            await self._refuse(exc.message, exc.code)
            return
        if isinstance(frame, Execute):
            if self._task is not None:
                await self.emit(AgentError("an execution is already running on this connection",
                                           "INVALID_REQUEST"))
                return
            request = as_run(frame, self.state.extensions)
            self._extensions = request.extensions
            if self.sandbox is None:  # (get() refuses the upgrade without one)
                raise RuntimeError("execute on a connection without a sandbox")
            control = self._control = RunControl(request.timeout)
            self._task = asyncio.get_running_loop().create_task(
                self._run(self.sandbox, request, control))
        elif self._task is None:
            await self._refuse(f"the first frame must be 'execute', got "
                               f"{frames.to_dict(frame)['type']!r}", "INVALID_REQUEST")
        elif not self._extensions:  # [ext] client frames, unknown to a HopX agent
            await self.emit(AgentError(f"unknown frame type {frames.to_dict(frame)['type']!r}",
                                       "INVALID_REQUEST"))
        elif isinstance(frame, Interrupt) and self._control is not None:  # (set with _task)
            self._control.interrupt()
        elif isinstance(frame, InputReply):
            if self._pending_input is None or self._pending_input.done():
                await self.emit(AgentError("no input is pending", "INVALID_REQUEST"))
            else:
                self._pending_input.set_result(frame.value)

    async def _ask(self, prompt: str, password: bool) -> str:
        future = self._pending_input = asyncio.get_running_loop().create_future()
        await self.emit(InputRequest(prompt, password))
        try:
            return await future
        finally:
            self._pending_input = None

    async def _run(self, sandbox: Sandbox, request: Execute, control: RunControl) -> None:
        success = False
        emit = self.emit if request.extensions else PlainEmit(self.emit)
        try:
            success = await execute(
                self.state.ctx,
                sandbox,
                request,
                emit=emit,
                ask=self._ask if request.allow_stdin else None,
                control=control,
            )
        except Exception:
            log.exception("execution failed inside the local sandbox server")
            await self.emit(AgentError("internal error in the local sandbox server",
                                       "INTERNAL_ERROR"))
        finally:
            self._done = True
        await self.emit(Complete(success))
        # ``request`` is as_run's: a plain agent (--no-extensions) has ignored the ask already
        if not (request.extensions and self.state.stream_reuse):
            self.close(1000)
            return
        # the socket stays open for the next execute frame (docs/protocol.md §2.5 [ext])
        self._task = self._control = None
        self._done = False
        self._idle = asyncio.get_running_loop().call_later(
            self.state.stream_idle_timeout, self._close_idle)

    def _close_idle(self) -> None:
        self._idle = None
        if self._task is None and not self._done:
            self._done = True  # an execute frame already in flight is not run
            self.close(1000, "idle")

    def on_close(self) -> None:
        if self._idle is not None:
            self._idle.cancel()
            self._idle = None
        if self._control is not None and not self._done:
            self._control.abandon()
