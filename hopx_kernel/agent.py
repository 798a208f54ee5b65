"""Async client for one sandbox's agent (docs/protocol.md §2): ``/execute/stream`` and friends.

Sockets and requests go out through a connector (:mod:`.transport`); this is where
websockets and tornado exceptions become :mod:`hopx_kernel.errors`.
The bearer token is only ever put in the ``Authorization`` header.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.protocol import State

from .api_errors import error_for_status
from .errors import (
    ControlPlaneError,
    FrameError,
    HopxKernelError,
    SandboxDisconnected,
    SandboxStalled,
    Unreachable,
)
from .frames import AgentFrame, ClientFrame, Complete, Execute, encode, parse_agent_frame
from .http import fetch, json_body
from .loopback import is_loopback_url
from .tls import client_context, tls_error
from .transport import Connector, Transport

log = logging.getLogger(__name__)

#: Raw frames buffered between the socket and the kernel; beyond this the socket is not
#: read, so TCP pushes back on the agent instead of the kernel's memory growing.
QUEUE_FRAMES = 64
#: A prepared connection older than this is not used: an agent may drop idle sockets.
SPARE_MAX_AGE = 30.0
#: At most this many sockets are opened ahead of need for an agent without socket reuse.
MAX_SPARES = 4
#: Largest frame accepted. The protocol keeps frames under 1 MiB; be lenient with agents.
MAX_INCOMING = 64 * 1024 * 1024

_CLOSED = object()


def ws_url(public_host: str, path: str) -> str:
    """The WebSocket URL the official SDK uses: scheme + host:port of ``public_host``, any
    path dropped (docs/protocol.md §2)."""
    parts = urlsplit(public_host)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{path}"


class Execution:
    """One running cell on one WebSocket.

    Iterate :meth:`batches` for frames; each batch is every frame that had already
    arrived, so bursts can be coalesced without delaying a frame after a quiet spell.

    On an agent that keeps sockets open between executions (docs/protocol.md §2.5 [ext]) the
    socket goes back to its :class:`AgentClient` once ``complete`` has arrived. If a
    socket that already carried an execution is closed cleanly (1000) before a single
    frame of this one arrived, the agent closed it as idle and never ran the code: the
    frame is sent again on a new socket, once.
    """

    def __init__(
        self,
        ws: ClientConnection,
        frame: Execute | None = None,
        *,
        agent: AgentClient | None = None,
        reused: bool = False,
        reusable: bool = False,
    ) -> None:
        self._ws = ws
        self._frame = frame
        self._agent = agent
        self._reused = reused  # the socket carried an earlier execution
        self._reusable = reusable  # give the socket back after ``complete``
        self._released = False
        self._queue: asyncio.Queue = asyncio.Queue(QUEUE_FRAMES)
        self._reader = asyncio.ensure_future(self._read())
        self.interrupted = False
        self.received = 0  # frames of this execution received, keepalives included
        self.resent = False

    async def _read(self) -> None:
        ws = self._ws
        try:
            async for raw in ws:
                await self._queue.put(raw)
        except ConnectionClosed:
            pass
        finally:
            if not self._released:
                await self._queue.put(_CLOSED)

    def _closed_error(self) -> SandboxDisconnected:
        exc = self._ws.close_exc if hasattr(self._ws, "close_exc") else None
        sent = getattr(exc, "sent", None)
        rcvd = getattr(exc, "rcvd", None)
        if rcvd is None and sent is not None and sent.code == 1011:
            return SandboxStalled(
                "The sandbox stopped answering (no reply to keepalive pings); the cell's"
                " output above is all that arrived",
                "Run the cell again; if it keeps happening, check your network or restart the kernel.",
            )
        how = f"close code {rcvd.code}" if rcvd is not None else "connection lost"
        return SandboxDisconnected(
            f"The connection to the sandbox dropped before the cell finished ({how}); the"
            " output above is all that arrived",
            "Run the cell again: the next cell reconnects.",
        )

    def _closed_idle(self) -> bool:
        """The agent closed a reused socket as idle before it took this execution."""
        if not self._reused or self.received or self.interrupted or self.resent:
            return False
        if self._agent is None or self._frame is None:
            return False
        rcvd = getattr(getattr(self._ws, "close_exc", None), "rcvd", None)
        return rcvd is not None and rcvd.code == 1000

    async def _resend(self) -> None:
        """Send the execute frame again on a new socket (see the class docstring)."""
        assert self._agent is not None and self._frame is not None
        self.resent, self._reused = True, False
        log.info("the agent closed an idle socket as the cell was sent; sending it on a new one")
        self._ws = await self._agent.connect_now()
        self._reader = asyncio.ensure_future(self._read())
        await self.send(self._frame)

    async def _release(self) -> None:
        """``complete`` arrived on a reusable socket: hand it back for the next execution."""
        self._released = True
        self._reader.cancel()  # websockets: a cancelled recv() loses nothing
        try:
            await self._reader
        except (asyncio.CancelledError, ConnectionClosed):
            pass
        if self._agent is not None:
            self._agent.keep_warm(self._ws)

    async def batches(self) -> AsyncIterator[list[AgentFrame]]:
        """Yield lists of parsed frames until ``complete``.

        Raises:
            SandboxDisconnected: the socket closed before ``complete``.
        """
        while True:
            raw = await self._queue.get()
            raws = [raw]
            while raw is not _CLOSED:
                try:
                    raw = self._queue.get_nowait()
                except asyncio.QueueEmpty:
                    break
                raws.append(raw)
            batch: list[AgentFrame] = []
            done = closed = False
            for item in raws:
                if item is _CLOSED:
                    closed = True
                    break
                self.received += 1
                try:
                    frame = parse_agent_frame(item)
                except FrameError as exc:
                    log.warning("skipping a malformed frame from the agent: %s", exc)
                    continue
                if frame is None:
                    continue
                batch.append(frame)
                if isinstance(frame, Complete):
                    done = True
                    break
            if batch:
                yield batch
            if done:
                if self._reusable and self._ws.state is State.OPEN:
                    await self._release()
                return
            if closed:
                if self._closed_idle():
                    await self._resend()
                    continue
                raise self._closed_error()

    async def send(self, frame: ClientFrame) -> None:
        try:
            await self._ws.send(encode(frame))
        except ConnectionClosed:
            pass  # the reader reports the loss

    async def abort(self) -> None:
        """Close the socket (interrupt for agents without the extension)."""
        await self._ws.close(code=1000, reason="interrupted by the user")

    async def close(self) -> None:
        if self._released:
            return  # the socket is the agent client's warm one now
        self._reader.cancel()
        try:
            await asyncio.wait_for(self._ws.close(), 2)
        except (asyncio.TimeoutError, ConnectionClosed, OSError):
            pass


def spares_wanted(connect_time: float, cell_gap: float) -> int:
    """How many sockets to keep opening ahead of need for an agent without socket reuse.

    A socket started when a cell starts is ready ``connect_time`` later; cells arrive
    every ``cell_gap``; so ``connect_time / cell_gap`` connects must be in flight for each
    cell to find one ready, plus one for the jitter when cells come faster than connects
    (back-to-back cells at 80 ms RTT: connect 2 RTT, 3 with TLS; gap ~1 RTT → 3, 4).

    >>> spares_wanted(0.160, 0.085), spares_wanted(0.0007, 0.004), spares_wanted(0.3, 30.0)
    (3, 1, 1)
    """
    if connect_time <= 0 or cell_gap <= 0:
        return 1
    need = math.ceil(connect_time / cell_gap - 0.05) + (connect_time > cell_gap)
    return max(1, min(MAX_SPARES, need))


class AgentClient:
    """One sandbox's agent at ``public_host``.

    Args:
        public_host: the agent's base URL.
        token: a callable returning the current bearer token (it changes on refresh).
        ping_interval / ping_timeout: WebSocket keepalive; a missed pong ends the cell as
            stalled. Long quiet cells are fine: only an unresponsive peer trips it.
        ca_bundle: PEM file of CAs to trust for https/wss (None: the system store).
        connector: how sockets and requests go out (default: a :class:`~.transport.Connector`
            of its own, closed by :meth:`close`; one passed in is the caller's to close).

    Attributes:
        reuse: the agent runs several executions on one socket (docs/protocol.md §2.5 [ext]);
            the session sets it from ``/health``. Then one warm socket is kept; otherwise
            sockets are opened ahead of need, as many as the pace of cells calls for.
    """

    def __init__(
        self,
        public_host: str,
        token: Callable[[], str],
        *,
        ping_interval: float = 20.0,
        ping_timeout: float = 20.0,
        ca_bundle: str | None = None,
        connector: Transport | None = None,
    ) -> None:
        self.public_host = public_host.rstrip("/")
        #: on this machine compression only costs CPU, and no proxy applies
        self._local = is_loopback_url(self.public_host)
        self._token = token
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        #: one context for every socket (also the kernel channel's): the CA file is read once
        self.ssl_context = client_context(ca_bundle) if self.public_host.startswith("https:") else None
        self._owns_connector = connector is None
        self.connector: Transport = connector if connector is not None else Connector()
        self.reuse = False
        self._closed = False  # close() has begun: no socket is opened any more
        self._warm: ClientConnection | None = None
        self._spares: deque[tuple[asyncio.Future, float]] = deque()
        self._connect_time = 0.0  # moving average of a connect's duration
        self._cell_gap = 0.0  # moving average of the time between two cells' starts
        self._last_start = 0.0
        self._last_wait = 0.0  # how long the last cell waited for its socket

    def __repr__(self) -> str:
        return f"AgentClient({self.public_host!r})"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token()}"}

    async def connect_now(self) -> ClientConnection:
        """Open ``/execute/stream`` (not yet sent anything).

        Raises:
            ControlPlaneError: the agent refused the upgrade (401, 410, ...).
            TlsError: the TLS handshake failed; the message names the certificate problem.
            Unreachable: no connection could be made.
        """
        if self._closed:  # e.g. the sandbox is being deleted: the agent would answer 410
            raise HopxKernelError("The kernel is shutting down")
        url = ws_url(self.public_host, "/execute/stream")
        t0 = time.monotonic()
        try:
            ws = await self.connector.websocket(
                url,
                additional_headers=self._headers(),
                compression=None if self._local else "deflate",
                proxy=None if self._local else True,
                ssl=self.ssl_context,
                max_size=MAX_INCOMING,
                ping_interval=self.ping_interval,
                ping_timeout=self.ping_timeout,
                open_timeout=20,
                close_timeout=2,
                user_agent_header=None,
            )
        except InvalidStatus as exc:
            response = exc.response
            raise error_for_status(
                response.status_code, bytes(response.body or b""), action="open the execution stream"
            ) from exc
        except (OSError, InvalidHandshake, asyncio.TimeoutError) as exc:
            tls = tls_error(exc, urlsplit(self.public_host).netloc)
            if tls is not None:
                raise tls from exc
            raise Unreachable(
                f"Could not connect to the sandbox at {self.public_host} ({exc.__class__.__name__})",
                "Run the cell again; if it keeps failing, restart the kernel.",
            ) from exc
        took = time.monotonic() - t0
        self._connect_time = took if not self._connect_time else 0.7 * self._connect_time + 0.3 * took
        return ws

    def _open_spare(self) -> None:
        if self._closed:
            return
        task = asyncio.ensure_future(self.connect_now())
        task.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._spares.append((task, time.monotonic()))

    def prepare(self) -> None:
        """Have the next cell's connection ready (or opening) before the cell comes."""
        if self._warm is not None and self._warm.state is State.OPEN:
            return
        if not self._spares:
            self._open_spare()

    def _top_up(self) -> None:
        """Keep as many connects in flight as the pace of cells needs (plain agents)."""
        want = spares_wanted(self._connect_time, self._cell_gap)
        while len(self._spares) < want:
            self._open_spare()

    def keep_warm(self, ws: ClientConnection) -> None:
        """The socket of a finished execution, to carry the next one."""
        if self._closed:
            asyncio.ensure_future(ws.close())
            return
        old, self._warm = self._warm, ws
        if old is not None and old is not ws:
            asyncio.ensure_future(old.close())

    async def _take_spare(self) -> ClientConnection | None:
        """The oldest prepared connection if it is still usable, else None."""
        while self._spares:
            task, at = self._spares.popleft()
            try:
                ws = await task
            except (HopxKernelError, asyncio.CancelledError):
                return None  # the caller connects afresh and reports any error properly
            if ws.state is State.OPEN and time.monotonic() - at < SPARE_MAX_AGE:
                return ws
            asyncio.ensure_future(ws.close())
        return None

    async def open_execution(self, frame: Execute) -> Execution:
        """A connection to ``/execute/stream`` with the ``execute`` frame sent: the warm
        socket when the agent reuses sockets, else a prepared one, else a new one.

        Raises:
            ControlPlaneError: the agent refused the upgrade (401, 410, ...).
            TlsError: the TLS handshake failed.
            Unreachable: no connection could be made.
        """
        now = time.monotonic()
        if self._last_start:
            # the pace of the cells themselves: less what the last one waited for its socket
            gap = max(min(now - self._last_start, 60.0) - self._last_wait, 1e-3)
            self._cell_gap = gap if not self._cell_gap else 0.7 * self._cell_gap + 0.3 * gap
        self._last_start = now
        ws, self._warm = self._warm, None
        reused = ws is not None and ws.state is State.OPEN
        if ws is None or not reused:
            if ws is not None:
                asyncio.ensure_future(ws.close())
            ws = await self._take_spare() or await self.connect_now()
        self._last_wait = time.monotonic() - now
        execution = Execution(ws, frame, agent=self, reused=reused, reusable=self.reuse)
        await execution.send(frame)
        if not self.reuse:
            self._top_up()
        return execution

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: dict | None = None,
        timeout: float = 30.0,
        raw: bool = False,
        headers: dict | None = None,
    ) -> Any:
        """A plain HTTP call to the agent; JSON in and out (``raw`` returns bytes)."""
        url = self.public_host + path + (f"?{urlencode(query)}" if query else "")
        hdrs = self._headers()
        payload: bytes | str | None = None
        if body is not None:
            if isinstance(body, (bytes, bytearray)):
                payload = bytes(body)
            else:
                payload = json.dumps(body)
                hdrs["Content-Type"] = "application/json"
        if headers:
            hdrs.update(headers)
        action, where = f"call {path}", f"the sandbox at {self.public_host}"
        response = await fetch(
            self.connector,
            method,
            url,
            headers=hdrs,
            body=payload,
            timeout=timeout,
            action=action,
            where=where,
            hint="Run the cell again.",
            ssl_context=self.ssl_context,
        )
        return response.body if raw else json_body(response, action=action, where=where)

    async def health(self) -> dict:
        """``GET /health``; waits (bounded) until the agent says it is healthy."""
        last: Exception | None = None
        for _ in range(40):
            try:
                body = await self.request("GET", "/health", timeout=5)
                if isinstance(body, dict) and body.get("status") in ("healthy", "ok"):
                    return body
            except (Unreachable, ControlPlaneError) as exc:
                last = exc
            await asyncio.sleep(0.25)
        raise Unreachable(
            f"The sandbox's agent at {self.public_host} never became healthy"
            + (f" ({last.message})" if isinstance(last, HopxKernelError) else ""),
            "Restart the kernel to get a new sandbox.",
        )

    def close(self) -> None:
        """Stop opening sockets, close the warm and spare ones and the connector (if ours).
        Safe to call twice."""
        self._closed = True
        warm, self._warm = self._warm, None
        if warm is not None:
            asyncio.ensure_future(warm.close())
        while self._spares:
            spare, _ = self._spares.popleft()
            if spare.done() and not spare.cancelled() and spare.exception() is None:
                asyncio.ensure_future(spare.result().close())
            else:
                spare.cancel()
        if self._owns_connector:
            self.connector.close()


__all__ = ["AgentClient", "Execution", "spares_wanted", "ws_url"]
