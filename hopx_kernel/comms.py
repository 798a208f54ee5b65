"""Comms and other pass-through Jupyter messages between the frontend and the sandbox.

:class:`CommBridge` is what the kernel's comm, ``comm_info`` and cell-stream handlers
call. It opens the sandbox's kernel channel when the agent has one (docs/protocol.md §2.4),
forwards the frontend's messages with their headers unchanged, publishes the sandbox's
messages on iopub as they are, and remembers the comm ids the frontend knows so that,
when the sandbox's kernel is replaced, the frontend is told ``comm_close`` for each.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from . import wire
from .errors import HopxKernelError
from .frames import Jupyter
from .kernel_channel import KernelChannel
from .session import SandboxSession

log = logging.getLogger(__name__)

#: How long a frontend comm message waits for the sandbox to finish handling it, so the
#: messages it causes arrive while the frontend still listens (as with a local kernel).
HANDLED_WAIT = 5.0
#: How long ``comm_info_request`` waits for the sandbox's answer.
REPLY_WAIT = 5.0

#: Publish an existing message (header kept) with its buffers.
PublishMsg = Callable[[dict, list], None]
#: Publish a new message of the kernel's own: (msg_type, content).
PublishNew = Callable[[str, dict], None]

NO_CHANNEL_NOTE = (
    "note: widgets need a sandbox with the kernel channel (docs/protocol.md §2.4); this one has "
    "none, so the widget above cannot show or update.\n"
)


class CommBridge:
    """The frontend's comms, carried to and from the sandbox.

    Args:
        sandbox: the kernel's sandbox session.
        publish_msg: publishes a sandbox message on iopub, header unchanged.
        publish_new: publishes a message of the kernel's own on iopub.
    """

    def __init__(self, sandbox: SandboxSession, publish_msg: PublishMsg, publish_new: PublishNew):
        self.sandbox = sandbox
        self._publish_msg = publish_msg
        self._publish_new = publish_new
        self.comms = wire.CommTracker()
        self._channel: KernelChannel | None = None
        self._generation = -1
        self._opening: asyncio.Lock | None = None
        self._replies: dict[str, asyncio.Future] = {}
        self._handled: dict[str, asyncio.Future] = {}
        self.warned_no_channel = False

    # -- the channel ---------------------------------------------------------------------

    @property
    def available(self) -> bool:
        """Whether the live sandbox has the kernel channel."""
        return self.sandbox.has_channel

    @property
    def last_seq(self) -> int | None:
        """The seq of the last message sent on the current channel (None: none)."""
        channel = self._channel
        if channel is None or not channel.open_now or channel.seq == 0:
            return None
        return channel.seq

    async def channel(self) -> KernelChannel | None:
        """The open channel to the live sandbox, opening it if needed; None without one."""
        channel = self._channel
        if (
            channel is not None
            and channel.open_now
            and self.sandbox.has_channel
            and self.sandbox.generation == self._generation
        ):
            return channel  # the common case, on every comm message: no lock, no await
        if self._opening is None:
            self._opening = asyncio.Lock()
        async with self._opening:
            live = await self.sandbox.ready()
            if self.sandbox.generation != self._generation:
                self._forget_all()  # a new sandbox: the old one's comms are gone
                if self._channel is not None:
                    await self._channel.close()
                    self._channel = None
                self._generation = self.sandbox.generation
            if not self.sandbox.has_channel:
                return None
            if self._channel is None or not self._channel.open_now:
                self._channel = await KernelChannel.open(
                    live.info.public_host,
                    live.token,
                    self._on_frame,
                    self._on_closed,
                    ssl_context=live.agent.ssl_context,
                    connector=live.agent.connector,
                )
            return self._channel

    def _on_closed(self, code: int | None) -> None:
        if code == wire.KERNEL_REPLACED:
            self._forget_all()
        for fut in [*self._replies.values(), *self._handled.values()]:
            if not fut.done():
                fut.set_result(None)

    def _forget_all(self) -> None:
        """Tell the frontend every comm it knew is closed."""
        for comm_id in self.comms.take_all():
            self._publish_new("comm_close", {"comm_id": comm_id, "data": {}})

    # -- sandbox → frontend --------------------------------------------------------------

    def _on_frame(self, frame: wire.ChannelFrame) -> None:
        msg = frame.msg
        kind = wire.msg_type(msg)
        parent_id = msg["parent_header"].get("msg_id")
        if frame.channel in ("shell", "control"):
            fut = self._replies.pop(parent_id, None)
            if fut is not None and not fut.done():
                fut.set_result((msg, frame.buffers))
            return
        if kind == "status":
            if msg["content"].get("execution_state") == "idle":
                fut = self._handled.pop(parent_id, None)
                if fut is not None and not fut.done():
                    fut.set_result(None)
            return
        self.comms.see(kind, msg["content"])
        self._publish_msg(msg, frame.buffers)

    def from_cell(self, frame: Jupyter, parent: dict) -> None:
        """A Jupyter message from the running cell's stream: publish it under the cell."""
        msg = dict(frame.msg, parent_header=parent.get("header", {}))
        self.comms.see(wire.msg_type(msg), msg["content"])
        self._publish_msg(msg, list(frame.buffers))

    def note_display(self, data: dict) -> None:
        """Say once, when a widget is shown, that it cannot work without the channel."""
        if not self.warned_no_channel and wire.shows_widget(data) and not self.available:
            self.warned_no_channel = True
            self._publish_new("stream", {"name": "stderr", "text": NO_CHANNEL_NOTE})

    # -- frontend → sandbox --------------------------------------------------------------

    async def forward(self, parent: dict, *, wait_handled: bool) -> bool:
        """Send a frontend comm message to the sandbox; False when there is no channel.

        With ``wait_handled``, return only once the sandbox has handled it (bounded), so
        the kernel's own ``idle`` for it follows what the sandbox published in response.
        """
        try:
            channel = await self.channel()
        except HopxKernelError as exc:
            log.warning("comm message not delivered: %s", exc.line())
            return False
        if channel is None:
            return False
        msg = _plain(parent)
        self.comms.see(wire.msg_type(msg), msg["content"])
        handled = None
        if wait_handled:
            handled = self._handled[msg["header"]["msg_id"]] = asyncio.get_running_loop().create_future()
        if not await channel.send("shell", msg, parent.get("buffers") or ()):
            self._handled.pop(msg["header"]["msg_id"], None)
            return False
        if handled is not None:
            try:
                await asyncio.wait_for(handled, HANDLED_WAIT)
            except asyncio.TimeoutError:
                self._handled.pop(msg["header"]["msg_id"], None)
        return True

    async def request(self, channel_name: str, parent: dict, timeout: float = REPLY_WAIT):
        """Send a request and wait for the sandbox's reply message (None: no answer)."""
        try:
            channel = await self.channel()
        except HopxKernelError:
            return None
        if channel is None:
            return None
        msg = _plain(parent)
        fut = self._replies[msg["header"]["msg_id"]] = asyncio.get_running_loop().create_future()
        if not await channel.send(channel_name, msg, parent.get("buffers") or ()):
            self._replies.pop(msg["header"]["msg_id"], None)
            return None
        try:
            return await asyncio.wait_for(fut, timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._replies.pop(msg["header"]["msg_id"], None)

    async def close(self) -> None:
        if self._channel is not None:
            await self._channel.close()
            self._channel = None


def _plain(msg: dict) -> dict:
    """The four parts of a received Jupyter message, as the channel carries them."""
    return {
        "header": dict(msg["header"]),
        "parent_header": dict(msg.get("parent_header") or {}),
        "metadata": dict(msg.get("metadata") or {}),
        "content": dict(msg.get("content") or {}),
    }


__all__ = ["CommBridge", "NO_CHANNEL_NOTE"]
