"""The kernel channel of one sandbox (docs/protocol.md §2.4), apart from its sockets.

A :class:`ChannelHub` joins the sandbox's IPython kernel and the channel connections
(:mod:`..web.channel`): client messages (comms, ``comm_info_request``, ``debug_request``)
go to the kernel's shell or control channel with their headers unchanged; kernel messages
no execution is waiting for (comm updates from threads and handlers, their replies) go to
every connection. An execution with ``channel_seq`` n waits until the hub has delivered
the client's message n, so a widget moved before a cell runs is moved when it reads it.

At most ``IN_FLIGHT`` client shell messages wait in the sandbox's kernel unhandled (a busy
kernel reads none while a cell runs, and ZeroMQ and ipykernel would otherwise queue a
flood without limit, and the next cell behind it); more comm messages are dropped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import OrderedDict
from typing import Protocol

from ... import wire
from .to_frames import plain_msg

log = logging.getLogger(__name__)

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
#: At most one CHANNEL_FULL error frame (and log line) per this many seconds: drops come
#: one per client message, and answering each would cost as much as the flood itself.
REFUSAL_EVERY = 5.0
#: Kernel message kinds → the Jupyter channel they travel on.
CHANNEL_OF = {"iopub": "iopub", "reply": "shell", "control": "control"}
#: iopub messages the channel does not carry (the client kernel publishes its own).
NOT_CARRIED = frozenset({"execute_input"})


class Connection(Protocol):
    """One channel connection, as the hub sees it."""

    def queue(self, frame: wire.ChannelFrame) -> None: ...

    def close(self, code: int | None = None, reason: str | None = None) -> None: ...


class ChannelHub:
    """The channel connections of one sandbox and the order bookkeeping."""

    def __init__(self) -> None:
        self.connections: set[Connection] = set()
        self.seq = wire.SeqTracker()
        self._delivered = asyncio.Event()
        self.closed = False
        #: client shell msg_ids handed to the kernel, no ``idle`` yet → when (monotonic)
        self.in_flight: OrderedDict[str, float] = OrderedDict()
        self.dropped = 0  # client comm messages dropped, all told...
        self.dropped_in_burst = 0  # ...and since the last one admitted
        self._said_at: float | None = None  # when the client was last told of drops

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

    def say_drop(self, now: float | None = None) -> bool:
        """Whether to tell the client (and the log) about a drop now: at most once per
        ``REFUSAL_EVERY`` seconds."""
        now = time.monotonic() if now is None else now
        if self._said_at is not None and now - self._said_at < REFUSAL_EVERY:
            return False
        self._said_at = now
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
