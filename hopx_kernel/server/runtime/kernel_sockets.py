"""Reading and writing the sandbox kernel's ZeroMQ sockets from the server's event loop.

ZeroMQ tells an event loop about a socket through a descriptor that signals *commands*,
not messages: any operation on the socket may process them, after which a message can
wait to be read while the descriptor stays quiet. pyzmq's asyncio sockets check for that
after each of their own operations; jupyter_client's ``Session.send`` writes on a
synchronous shadow of the socket instead, so a message that arrived as the server sent
one was left unread until the next came. A cell whose ``execute_reply`` arrived while a
widget message was being passed to the kernel never ended. :class:`Channel` sends
through the asyncio socket.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from jupyter_client.channels import AsyncZMQSocketChannel

log = logging.getLogger(__name__)


class Channel(AsyncZMQSocketChannel):
    """jupyter_client's async channel, sending through the asyncio socket (module doc)."""

    def send(self, msg: dict[str, Any]) -> None:
        assert self.session is not None and self.socket is not None
        frames: list[Any] = self.session.serialize(msg)
        frames.extend(msg.get("buffers") or [])
        sent: Any = self.socket.send_multipart(frames)  # a Future, done unless ZeroMQ queues it
        sent.add_done_callback(_report_failure)


def _report_failure(sent: Any) -> None:
    if not sent.cancelled() and sent.exception() is not None:
        log.warning("could not send a message to the sandbox's kernel: %s", sent.exception())


#: ``km.client(**CLIENT_CHANNELS)``: a kernel client whose channels are :class:`Channel`.
CLIENT_CHANNELS = {
    "shell_channel_class": Channel,
    "iopub_channel_class": Channel,
    "stdin_channel_class": Channel,
    "control_channel_class": Channel,
}


def reader(channel: Any) -> Callable[[], Awaitable[dict]]:
    """Reads the next message of one of jupyter_client's async channels straight from its
    socket: its ``get_msg`` first awaits a poll (a poller, an epoll registration and three
    event-loop turns per message, even with messages waiting); a receive returns at once
    when one waits, so a burst (a widget update's status and echo) is read back to back."""
    socket, session = channel.socket, channel.session

    async def next_msg() -> dict:
        _, frames = session.feed_identities(await socket.recv_multipart())
        return session.deserialize(frames)

    return next_msg
