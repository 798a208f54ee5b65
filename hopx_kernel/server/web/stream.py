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
import contextlib
import logging
from typing import TYPE_CHECKING, Any

from tornado.websocket import WebSocketClosedError

from ... import frames
from ...errors import FrameError
from ...frames import (
    AgentError,
    ClearOutput,
    Complete,
    Display,
    Execute,
    InputReply,
    InputRequest,
    Interrupt,
    Stream,
    hopx_frames,
)
from ..domain.execution import as_run, execute, timestamped
from ..runtime.run_control import RunControl
from .base import SandboxWebSocket

if TYPE_CHECKING:
    from ..domain.sandbox import Sandbox

log = logging.getLogger(__name__)
#: Frames dropped (rather than waited for) once an execution must stop.
OUTPUT_FRAMES = (Stream, Display, ClearOutput)


def _retrieve(future: asyncio.Future) -> None:
    """Take a finished write's outcome: a write to a client that left is no error here."""
    if not future.cancelled():
        future.exception()


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
        self._writing: asyncio.Future | None = None  # the frame tornado is sending

    # ------------------------------------------------------------ handshake

    def open(self, *args: Any, **kwargs: Any) -> None:
        # Frames are small and latency-bound: without TCP_NODELAY, Nagle's algorithm holds
        # ``complete`` behind ``result`` until the client's delayed ACK (~40 ms per cell).
        self.set_nodelay(True)

    # ------------------------------------------------------------ sending

    async def emit(self, frame: frames.AgentFrame) -> None:
        """Send one frame, waiting while the client reads slowly (backpressure).

        At most one frame waits in tornado's buffer. Once the execution must stop (its
        deadline passed, or the client left) output frames that cannot go at once are
        dropped, so the deadline is kept even when the client reads nothing; a client that
        takes nothing for ``client_timeout`` seconds is dropped. A connection that is gone
        is not an error here.
        """
        control = self._control if isinstance(frame, OUTPUT_FRAMES) else None
        if await self._queue(frame, control):
            await self._wait_for_client(self._writing, control)

    async def _queue(self, frame: frames.AgentFrame, control: RunControl | None) -> bool:
        """Wait until tornado's buffer is empty, then hand ``frame`` to it (``_writing``).
        False when the frame was not sent (connection gone, or dropped output)."""
        while self._writing is not None and not self._writing.done():
            if not await self._wait_for_client(self._writing, control):
                return False  # dropped: the execution is stopping and the client is behind
        if self.ws_connection is None or self.ws_connection.is_closing():
            return False
        try:
            data, binary = frames.encode_utf8(frame, timestamped(frame))
            self._writing = self.write_message(data, binary=binary)
        except WebSocketClosedError:
            return False
        self._writing.add_done_callback(_retrieve)
        return True

    async def _wait_for_client(self, writing: asyncio.Future | None, control: RunControl | None) -> bool:
        """Wait until ``writing`` is sent; False when ``control`` began stopping first.
        A client that takes nothing for ``client_timeout`` seconds is disconnected."""
        if writing is None:
            return True
        waits: set = {asyncio.ensure_future(asyncio.shield(writing))}
        if control is not None:
            if control.stopping.is_set():
                return writing.done()
            waits.add(asyncio.ensure_future(control.stopping.wait()))
        try:
            done, _ = await asyncio.wait(
                waits, timeout=self.state.client_timeout, return_when=asyncio.FIRST_COMPLETED
            )
        finally:
            for w in waits:
                w.cancel()
        if writing.done():
            with contextlib.suppress(BaseException):
                writing.result()
            return True
        if not done:  # the client took nothing for client_timeout seconds: drop it
            log.info("dropping a stream client that read nothing for %g s", self.state.client_timeout)
            self._drop_client()
        return False

    def _drop_client(self) -> None:
        stream = getattr(self.ws_connection, "stream", None)
        if stream is not None:
            stream.close()
        if self._control is not None:
            self._control.abandon()

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
            await self._refuse(f"frame of {size} bytes is larger than the 1 MiB limit", "INVALID_REQUEST")
            return
        try:
            frame = frames.parse_client_frame(message)
        except FrameError as exc:
            await self._refuse(exc.message, exc.code)
            return
        if isinstance(frame, Execute):
            if self._task is not None:
                await self.emit(
                    AgentError("an execution is already running on this connection", "INVALID_REQUEST")
                )
                return
            request = as_run(frame, self.state.extensions)
            self._extensions = request.extensions
            if self.sandbox is None:  # (get() refuses the upgrade without one)
                raise RuntimeError("execute on a connection without a sandbox")
            control = self._control = RunControl(request.timeout)
            self._task = asyncio.get_running_loop().create_task(self._run(self.sandbox, request, control))
        elif self._task is None:
            await self._refuse(
                f"the first frame must be 'execute', got {frames.to_dict(frame)['type']!r}", "INVALID_REQUEST"
            )
        elif not self._extensions:  # [ext] client frames, unknown to a HopX agent
            await self.emit(
                AgentError(f"unknown frame type {frames.to_dict(frame)['type']!r}", "INVALID_REQUEST")
            )
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
            await self.emit(AgentError("internal error in the local sandbox server", "INTERNAL_ERROR"))
        finally:
            self._done = True
            control.finish()
        # ``complete`` goes into tornado's buffer and the connection becomes ready for the
        # next execute in one step, with no await between: a client that answers
        # ``complete`` at once must find its next execute frame taken, not dropped.
        if not await self._queue(Complete(success), None):
            return
        # ``request`` is as_run's: a plain agent (--no-extensions) has ignored the ask already
        if not (request.extensions and self.state.stream_reuse):
            self.close(1000)
            return
        # the socket stays open for the next execute frame (docs/protocol.md §2.5 [ext])
        self._task = self._control = None
        self._done = False
        self._idle = asyncio.get_running_loop().call_later(self.state.stream_idle_timeout, self._close_idle)
        await self._wait_for_client(self._writing, None)

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
