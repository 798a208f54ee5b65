"""``GET /kernel/channel``: Jupyter messages outside a cell's stream (docs/protocol.md §2.4).

A :class:`ChannelHub` per sandbox joins the sandbox's IPython kernel and the channel
connections: client messages (comms, ``comm_info_request``, ``debug_request``) go to the
kernel's shell or control channel with their headers unchanged; kernel messages no
execution is waiting for (comm updates from threads and handlers, their replies) go to
every connection. An execution with ``channel_seq`` n waits until the hub has delivered
the client's message n, so a widget moved before a cell runs is moved when it reads it.

Memory stays bounded both ways: tornado reads the next client frame only after the last
one was handed to the kernel; at most ``IN_FLIGHT`` client shell messages wait in the
sandbox's kernel unhandled (a busy kernel reads none while a cell runs, and ZeroMQ and
ipykernel would otherwise queue a flood without limit, and the next cell behind it), more
are dropped with an error frame to the client; and each connection queues at most
``OUT_QUEUE`` messages for a slow client (more are dropped, counted and logged, never
buffered without limit).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from tornado.websocket import WebSocketClosedError

from ... import wire
from ...errors import FrameError
from ..domain.to_frames import plain_msg
from .base import SandboxWebSocket

if TYPE_CHECKING:  # (sandbox.py imports this module)
    from ..domain.sandbox import Sandbox

log = logging.getLogger(__name__)

#: Messages queued per connection for a client that reads slowly.
OUT_QUEUE = 1024
#: Longest an execution waits for the channel messages it was told to wait for.
SEQ_WAIT = 10.0
#: Client shell messages (comms) the sandbox's kernel may hold unhandled: handed to it,
#: its ``idle`` for them not seen yet. At 2-3 ms each that is ~1.5 s of work queued ahead
#: of the next cell; beyond it, client comm messages are dropped (control ones never).
IN_FLIGHT = 512
DROPPABLE = frozenset({"comm_open", "comm_msg", "comm_close"})
#: A message counts as in flight for at most this long (ipykernel sends no ``idle`` for a
#: comm it handles while an async cell runs, so its place must free itself).
IN_FLIGHT_TTL = 10.0
#: Kernel message kinds → the Jupyter channel they travel on.
CHANNEL_OF = {"iopub": "iopub", "reply": "shell", "control": "control"}
#: iopub messages the channel does not carry (the client kernel publishes its own).
NOT_CARRIED = frozenset({"execute_input"})


class ChannelHub:
    """The channel connections of one sandbox and the order bookkeeping."""

    def __init__(self) -> None:
        self.connections: set[ChannelHandler] = set()
        self.seq = wire.SeqTracker()
        self._delivered = asyncio.Event()
        self.closed = False
        #: client shell msg_ids handed to the kernel, no ``idle`` yet → when (monotonic)
        self.in_flight: OrderedDict[str, float] = OrderedDict()
        self.dropped = 0  # client comm messages dropped, all told...
        self.dropped_in_burst = 0  # ...and since the last one admitted

    # -- client → kernel

    def delivered(self, seq: int | None) -> None:
        """A client message (with ``seq``) was handed to the kernel."""
        self.seq.note(seq)
        self._delivered.set()

    async def wait_delivered(self, channel_seq: int) -> None:
        """Return once the client's message ``channel_seq`` was delivered (bounded wait)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + SEQ_WAIT
        while not self.seq.reached(channel_seq) and not self.closed:
            self._delivered.clear()
            left = deadline - loop.time()
            if left <= 0:
                log.warning(
                    "an execution waited %.0f s for channel message %d (have %d); running it anyway",
                    SEQ_WAIT,
                    channel_seq,
                    self.seq.forwarded,
                )
                return
            # wait_for, not asyncio.timeout (3.11+): the package supports Python 3.10,
            # where asyncio.TimeoutError is not yet the builtin TimeoutError
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._delivered.wait(), left)

    def admit(self, msg: dict, now: float | None = None) -> bool:
        """Whether a client shell message may go to the kernel now (then it counts as in
        flight until its ``idle``); False: ``IN_FLIGHT`` are unhandled and it is a comm
        message, drop it (a ``comm_info_request`` always goes)."""
        now = time.monotonic() if now is None else now
        while self.in_flight and next(iter(self.in_flight.values())) < now - IN_FLIGHT_TTL:
            self.in_flight.popitem(last=False)
        msg_id = msg["header"]["msg_id"]
        if len(self.in_flight) >= IN_FLIGHT and wire.msg_type(msg) in DROPPABLE:
            self.dropped += 1
            self.dropped_in_burst += 1
            return False
        self.dropped_in_burst = 0
        self.in_flight[msg_id] = now
        return True

    def restart_seq(self) -> None:
        """A new connection numbers its messages from 1 again."""
        self.seq = wire.SeqTracker()

    # -- kernel → client

    def from_kernel(self, kind: str, msg: dict) -> None:
        """Pass a kernel message nobody waits for to every connection."""
        channel = CHANNEL_OF.get(kind)
        msg_type = msg["header"].get("msg_type")
        if channel is None or msg_type in NOT_CARRIED:
            return
        if msg_type == "status":
            state = (msg.get("content") or {}).get("execution_state")
            if state == "idle":
                self.in_flight.pop(msg["parent_header"].get("msg_id", ""), None)
            else:
                # the client kernel publishes its own busy; only idle tells it (and the
                # count above) that a message was handled: one frame less ahead of its echo
                return
        if not self.connections:
            return
        frame = wire.ChannelFrame(channel, plain_msg(msg), [bytes(b) for b in msg.get("buffers") or ()])
        for conn in list(self.connections):
            conn.queue(frame)

    def close(self, code: int = wire.KERNEL_REPLACED, reason: str = "the sandbox's kernel ended") -> None:
        """The kernel is gone: close every connection with ``code``."""
        self.closed = True
        self._delivered.set()
        for conn in list(self.connections):
            conn.close(code, reason)
        self.connections.clear()


class ChannelHandler(SandboxWebSocket):
    """One client's ``/kernel/channel`` connection to one sandbox (by bearer token)."""

    def initialize(self, state: Any) -> None:
        self.state = state
        self.sandbox: Sandbox | None = None  # looked up in get(), before the socket opens
        self._out: asyncio.Queue | None = None
        self._sender: asyncio.Task | None = None
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
        hub: ChannelHub = self._joined.hub
        if hub.closed:
            self.close(wire.KERNEL_REPLACED, "the sandbox's kernel ended")
            return
        hub.restart_seq()
        hub.connections.add(self)
        self._out = asyncio.Queue(OUT_QUEUE)
        self._sender = asyncio.ensure_future(self._send_loop())

    def queue(self, frame: wire.ChannelFrame) -> None:
        if self._out is None:
            return
        try:
            self._out.put_nowait(frame)
        except asyncio.QueueFull:
            self.dropped += 1
            if self.dropped == 1 or self.dropped % 1000 == 0:
                log.warning("kernel channel: the client reads too slowly; %d messages dropped", self.dropped)

    async def _send_loop(self) -> None:
        assert self._out is not None
        while True:
            frame = await self._out.get()
            try:
                data = wire.encode_channel_frame(frame)
                await self.write_message(data, binary=isinstance(data, bytes))
            except WebSocketClosedError:
                return
            except (TypeError, ValueError):
                log.warning("kernel channel: a kernel message could not be encoded; skipped", exc_info=True)

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
            if sandbox.hub.dropped_in_burst % 1000 == 1:  # one error frame per burst (and per 1000)
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
