"""``GET /kernel/channel``: Jupyter messages outside a cell's stream (docs/protocol.md §2.4).

One :class:`ChannelHandler` per client connection; the sandbox's
:class:`~..domain.channel_hub.ChannelHub` routes between its kernel and them (and bounds
what waits in the kernel). Client messages go to the kernel's shell or control channel
with their headers unchanged; kernel messages no execution waits for go to every
connection.

Memory stays bounded both ways: tornado reads the next client frame only after the last
one was handed to the kernel; at most ``IN_FLIGHT`` client shell messages wait in the
sandbox's kernel unhandled (more are dropped with an error frame to the client); and each
connection queues at most ``OUT_QUEUE`` messages for a slow client (more are dropped,
counted and logged, never buffered without limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import TYPE_CHECKING, Any

from tornado.websocket import WebSocketClosedError

from ... import wire
from ...errors import FrameError
from ..domain.channel_hub import IN_FLIGHT
from .base import SandboxWebSocket

if TYPE_CHECKING:  # (annotations only)
    from ..domain.sandbox import Sandbox

log = logging.getLogger(__name__)

#: Messages queued per connection for a client that reads slowly.
OUT_QUEUE = 1024


class ChannelHandler(SandboxWebSocket):
    """One client's ``/kernel/channel`` connection to one sandbox (by bearer token)."""

    def initialize(self, state: Any) -> None:
        self.state = state
        self.sandbox: Sandbox | None = None  # looked up in get(), before the socket opens
        self._out: asyncio.Queue | None = None
        self._sender: asyncio.Task | None = None
        self._writing: asyncio.Future | None = None  # the last frame's write to the client
        self._waiting = 0  # frames queued or held by the send loop, not yet written
        self.dropped = 0

    @property
    def max_message_size(self) -> int:
        # widget buffers (images) may be large: frames up to MAX_CHANNEL_FRAME are taken,
        # larger ones up to twice that get an error frame, beyond it the socket closes (1009)
        return 2 * wire.MAX_CHANNEL_FRAME

    @property
    def _joined(self) -> Sandbox:
        """The sandbox of an open connection (get() refuses the upgrade without one)."""
        if self.sandbox is None:
            raise RuntimeError("kernel channel used before its sandbox was looked up")
        return self.sandbox

    def open(self, *args: Any, **kwargs: Any) -> None:
        self.set_nodelay(True)
        hub = self._joined.hub
        if hub.closed:
            self.close(wire.KERNEL_REPLACED, "the sandbox's kernel ended")
            return
        hub.restart_seq()
        hub.connections.add(self)
        self._out = asyncio.Queue(OUT_QUEUE)
        self._sender = asyncio.ensure_future(self._send_loop())

    def queue(self, frame: wire.ChannelFrame) -> None:
        """Send ``frame`` to the client: written at once when nothing waits ahead of it and
        the last write is done (the common case: one event-loop turn less per message than
        through the send loop), else queued behind the rest, in order."""
        if self._out is None:
            return
        if not self._waiting and (self._writing is None or self._writing.done()):
            self._write(frame)
            return
        try:
            self._out.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("kernel channel: the client reads too slowly; %d messages dropped", self.dropped)
            return
        self._waiting += 1

    def _write(self, frame: wire.ChannelFrame) -> None:
        try:
            data = wire.encode_channel_frame(frame)
        except (TypeError, ValueError):
            log.warning("kernel channel: a kernel message could not be encoded; skipped", exc_info=True)
            return
        try:
            self._writing = self.write_message(data, binary=isinstance(data, bytes))
        except WebSocketClosedError:  # closing: on_close ends the sender
            return
        self._writing.add_done_callback(_consume)

    async def _send_loop(self) -> None:
        """Write what was queued, in order, one write at a time (a slow client holds at
        most ``OUT_QUEUE`` frames here)."""
        assert self._out is not None
        while True:
            frame = await self._out.get()
            writing = self._writing
            if writing is not None and not writing.done():
                try:
                    await writing
                except WebSocketClosedError:
                    return
            self._waiting -= 1
            self._write(frame)

    async def _refuse(self, message: str, code: str = "INVALID_REQUEST") -> None:
        with contextlib.suppress(WebSocketClosedError):
            await self.write_message(json.dumps({"type": "error", "error": message, "code": code}))

    async def on_message(self, message: str | bytes) -> None:
        try:
            frame = wire.parse_channel_frame(message, from_client=True)
        except FrameError as exc:
            await self._refuse(exc.message, exc.code)
            return
        sandbox = self._joined
        if not sandbox.hub.seq.note(frame.seq) and frame.seq is not None:
            log.info(
                "kernel channel: message seq %d out of order (after %d)", frame.seq, sandbox.hub.seq.forwarded
            )
        if frame.channel == "shell" and not sandbox.hub.admit(frame.msg):
            # delivered as far as order goes (a cell waiting for this seq need not wait)
            sandbox.hub.delivered(None)
            if sandbox.hub.say_drop():  # at most one error frame every REFUSAL_EVERY s
                line = (
                    f"the sandbox's kernel is busy with {IN_FLIGHT} comm messages not yet handled; comm "
                    f"messages are dropped until it catches up ({sandbox.hub.dropped} so far): send them "
                    "more slowly (throttle the widget's updates)"
                )
                log.warning("kernel channel: %s", line)
                await self._refuse(line, "CHANNEL_FULL")
            return
        sandbox.runner.send(frame.channel, frame.msg, frame.buffers)
        sandbox.hub.delivered(None)

    def on_close(self) -> None:
        if self.sandbox is not None:
            self.sandbox.hub.connections.discard(self)
        if self._sender is not None:
            self._sender.cancel()
        self._out = None


def _consume(write: asyncio.Future) -> None:
    """Retrieve a write's error (the client went away): on_close deals with that."""
    if not write.cancelled():
        write.exception()
