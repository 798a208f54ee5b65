"""Async client for one sandbox's agent (PROTOCOL.md §2): ``/execute/stream`` and friends.

This is where websockets and tornado exceptions become :mod:`hopx_kernel.errors`.
The bearer token is only ever put in the ``Authorization`` header.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlencode, urlsplit

from websockets.asyncio.client import ClientConnection, connect
from websockets.protocol import State
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from .api_errors import error_for_status
from .errors import (
    ControlPlaneError,
    FrameError,
    HopxKernelError,
    SandboxDisconnected,
    SandboxStalled,
    Unreachable,
)
from .http import fetch, json_body, new_client
from .loopback import is_loopback_url
from .frames import AgentFrame, ClientFrame, Complete, Execute, encode, parse_agent_frame

log = logging.getLogger(__name__)

#: Raw frames buffered between the socket and the kernel; beyond this the socket is not
#: read, so TCP pushes back on the agent instead of the kernel's memory growing.
QUEUE_FRAMES = 64
#: A prepared connection older than this is not used: an agent may drop idle sockets.
SPARE_MAX_AGE = 30.0
#: Largest frame accepted. The protocol keeps frames under 1 MiB; be lenient with agents.
MAX_INCOMING = 64 * 1024 * 1024

_CLOSED = object()


def ws_url(public_host: str, path: str) -> str:
    """The WebSocket URL the official SDK uses: scheme + host:port of ``public_host``, any
    path dropped (PROTOCOL.md §2)."""
    parts = urlsplit(public_host)
    scheme = "wss" if parts.scheme == "https" else "ws"
    return f"{scheme}://{parts.netloc}{path}"


class Execution:
    """One running cell on one WebSocket.

    Iterate :meth:`batches` for frames; each batch is every frame that had already
    arrived, so bursts can be coalesced without delaying a frame after a quiet spell.
    """

    def __init__(self, ws: ClientConnection) -> None:
        self._ws = ws
        self._queue: asyncio.Queue = asyncio.Queue(QUEUE_FRAMES)
        self._reader = asyncio.ensure_future(self._read())
        self.interrupted = False

    async def _read(self) -> None:
        try:
            async for raw in self._ws:
                await self._queue.put(raw)
        except ConnectionClosed:
            pass
        finally:
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
            done = False
            for item in raws:
                if item is _CLOSED:
                    if batch:
                        yield batch
                    raise self._closed_error()
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
                return

    async def send(self, frame: ClientFrame) -> None:
        try:
            await self._ws.send(encode(frame))
        except ConnectionClosed:
            pass  # the reader reports the loss

    async def abort(self) -> None:
        """Close the socket (interrupt for agents without the extension)."""
        await self._ws.close(code=1000, reason="interrupted by the user")

    async def close(self) -> None:
        self._reader.cancel()
        try:
            await asyncio.wait_for(self._ws.close(), 2)
        except (asyncio.TimeoutError, ConnectionClosed, OSError):
            pass


class AgentClient:
    """One sandbox's agent at ``public_host``.

    Args:
        public_host: the agent's base URL.
        token: a callable returning the current bearer token (it changes on refresh).
        ping_interval / ping_timeout: WebSocket keepalive; a missed pong ends the cell as
            stalled. Long quiet cells are fine: only an unresponsive peer trips it.
    """

    def __init__(
        self,
        public_host: str,
        token: Callable[[], str],
        *,
        ping_interval: float = 20.0,
        ping_timeout: float = 20.0,
    ) -> None:
        self.public_host = public_host.rstrip("/")
        #: on this machine compression only costs CPU, and no proxy applies
        self._local = is_loopback_url(self.public_host)
        self._token = token
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self._http = new_client()
        self._spare: asyncio.Future | None = None
        self._spare_at = 0.0

    def __repr__(self) -> str:
        return f"AgentClient({self.public_host!r})"

    def _headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token()}"}

    async def _connect(self) -> ClientConnection:
        """Open ``/execute/stream`` (not yet sent anything).

        Raises:
            ControlPlaneError: the agent refused the upgrade (401, 410, ...).
            Unreachable: no connection could be made.
        """
        url = ws_url(self.public_host, "/execute/stream")
        try:
            return await connect(
                url,
                additional_headers=self._headers(),
                compression=None if self._local else "deflate",
                proxy=None if self._local else True,
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
            raise Unreachable(
                f"Could not connect to the sandbox at {self.public_host} ({exc.__class__.__name__})",
                "Run the cell again; if it keeps failing, restart the kernel.",
            ) from exc

    def prepare(self) -> None:
        """Open the next cell's connection in the background (one execution per socket,
        as PROTOCOL.md has it, but the connect is off the cell's path)."""
        if self._spare is None:
            self._spare = asyncio.ensure_future(self._connect())
            self._spare.add_done_callback(lambda f: f.cancelled() or f.exception())
            self._spare_at = time.monotonic()

    async def _take_spare(self) -> ClientConnection | None:
        """The prepared connection if it is still usable, else None."""
        task, self._spare = self._spare, None
        if task is None:
            return None
        try:
            ws = await task
        except (HopxKernelError, asyncio.CancelledError):
            return None  # the caller connects afresh and reports any error properly
        if ws.state is State.OPEN and time.monotonic() - self._spare_at < SPARE_MAX_AGE:
            return ws
        asyncio.ensure_future(ws.close())
        return None

    async def open_execution(self, frame: Execute) -> Execution:
        """A connection to ``/execute/stream`` (the prepared one if usable) with the
        ``execute`` frame sent.

        Raises:
            ControlPlaneError: the agent refused the upgrade (401, 410, ...).
            Unreachable: no connection could be made.
        """
        ws = await self._take_spare() or await self._connect()
        execution = Execution(ws)
        await execution.send(frame)
        return execution

    async def request(
        self, method: str, path: str, *, body: Any = None, query: dict | None = None,
        timeout: float = 30.0, raw: bool = False, headers: dict | None = None,
    ) -> Any:
        """A plain HTTP call to the agent; JSON in and out (``raw`` returns bytes)."""
        url = self.public_host + path + (f"?{urlencode(query)}" if query else "")
        hdrs = self._headers()
        payload = None
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
            self._http, method, url, headers=hdrs, body=payload, timeout=timeout,
            action=action, where=where, hint="Run the cell again.",
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
        spare, self._spare = self._spare, None
        if spare is not None:
            if spare.done() and not spare.cancelled() and spare.exception() is None:
                asyncio.ensure_future(spare.result().close())
            else:
                spare.cancel()
        self._http.close()


__all__ = ["AgentClient", "Execution", "ws_url"]
