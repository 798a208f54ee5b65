"""The kernel's side of ``/kernel/channel`` (docs/protocol.md §2.4): one socket per sandbox.

:class:`KernelChannel` numbers what it sends (``seq``), hands every message the agent
sends to a callback, and reports the end of the socket once (``on_closed``), so the
kernel can tell the frontend ``comm_close`` for every comm when the sandbox's kernel
is replaced. Frame layout and validation live in :mod:`hopx_kernel.wire`.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
from collections.abc import Callable
from urllib.parse import urlsplit

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from . import wire
from .agent import MAX_INCOMING, ws_url
from .errors import FrameError, Unreachable
from .tls import tls_error
from .transport import Connector, Transport

log = logging.getLogger(__name__)

OnFrame = Callable[[wire.ChannelFrame], None]


class KernelChannel:
    """A connected ``/kernel/channel`` socket.

    Args:
        ws: the open WebSocket.
        on_frame: called (on the event loop) with each valid frame from the agent.
        on_closed: called once when the socket ends, with its close code (None if unknown).
    """

    def __init__(
        self, ws: ClientConnection, on_frame: OnFrame, on_closed: Callable[[int | None], None]
    ) -> None:
        self._ws = ws
        self._on_frame = on_frame
        self._on_closed = on_closed
        self.seq = 0
        self.bad_frames = 0
        self.refusals = 0  # the agent's error frames (a message it refused or dropped)
        self._reader = asyncio.ensure_future(self._read())

    @classmethod
    async def open(
        cls,
        public_host: str,
        token: str,
        on_frame: OnFrame,
        on_closed: Callable[[int | None], None],
        *,
        ssl_context: ssl.SSLContext | None = None,
        connector: Transport | None = None,
    ) -> KernelChannel:
        """Connect to the agent's channel (``ssl_context`` and ``connector``: the agent
        client's, so wss trusts the same CAs and a test's fake transport carries it too).

        Raises:
            TlsError: the TLS handshake failed; the message names the certificate problem.
            Unreachable: the agent refused or could not be reached.
        """
        url = ws_url(public_host, "/kernel/channel")
        try:
            ws = await (connector or Connector()).websocket(
                url,
                additional_headers={"Authorization": f"Bearer {token}"},
                compression=None,
                ssl=ssl_context if url.startswith("wss:") else None,
                max_size=MAX_INCOMING,
                ping_interval=20,
                ping_timeout=20,
                open_timeout=10,
                close_timeout=2,
                user_agent_header=None,
            )
        except (InvalidStatus, OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
            tls = tls_error(exc, urlsplit(public_host).netloc)
            if tls is not None:
                raise tls from exc
            raise Unreachable(
                f"Could not open the sandbox's kernel channel ({exc.__class__.__name__})",
                "Widgets and the debugger need it; run the cell again.",
            ) from exc
        return cls(ws, on_frame, on_closed)

    @property
    def open_now(self) -> bool:
        return not self._reader.done()

    async def _read(self) -> None:
        code = None
        try:
            async for raw in self._ws:
                try:
                    frame = wire.parse_channel_frame(raw, from_client=False)
                except FrameError as exc:
                    refusal = wire.channel_refusal(raw)
                    if refusal is not None:  # e.g. CHANNEL_FULL: comm messages were dropped
                        self.refusals += 1
                        log.warning("the sandbox refused kernel-channel messages (%s): %s", *refusal)
                        continue
                    self.bad_frames += 1
                    log.warning("skipping a malformed kernel-channel frame: %s", exc)
                    continue
                try:
                    self._on_frame(frame)
                except Exception:  # one bad message must not end the channel
                    log.exception("could not handle a kernel-channel message")
        except ConnectionClosed:
            pass
        finally:
            rcvd = getattr(self._ws, "close_rcvd", None)
            code = rcvd.code if rcvd is not None else None
            self._on_closed(code)

    async def send(self, channel: str, msg: dict, buffers: list[bytes] | tuple = ()) -> int:
        """Send one message; returns its ``seq`` (0 when the socket is gone)."""
        self.seq += 1
        frame = wire.ChannelFrame(channel, msg, [bytes(b) for b in buffers], self.seq)
        try:
            await self._ws.send(wire.encode_channel_frame(frame))
        except ConnectionClosed:
            return 0
        return self.seq

    async def close(self) -> None:
        self._reader.cancel()
        try:
            await asyncio.wait_for(self._ws.close(), 2)
        except (asyncio.TimeoutError, ConnectionClosed, OSError):
            pass


__all__ = ["KernelChannel"]
