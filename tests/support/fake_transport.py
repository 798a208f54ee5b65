"""An in-memory HopX for unit tests: a connector (hopx_kernel/transport.py) whose control
plane answers from a table and whose agent sockets answer each ``execute`` frame with
scripted frames. Nothing here opens a socket.

    hopx = FakeHopx()
    hopx.replies.append([{"type": "stdout", "data": "hi\\n"}, COMPLETE])
    session = SandboxSession(Config(mode="cloud", ...), connector=hopx)

Every request and connect is recorded in :attr:`FakeHopx.log` (``("POST", path, headers)``
and ``("WS", url, headers)``), in order.
"""

from __future__ import annotations

import asyncio
import io
import json
from collections import deque
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from tornado.httpclient import HTTPRequest, HTTPResponse
from websockets.exceptions import ConnectionClosed
from websockets.frames import Close
from websockets.protocol import State

AGENT = "https://sandbox-1.fake.hopx.test"
COMPLETE = {"type": "complete", "success": True}
HEALTH = {"status": "healthy", "version": "fake", "features": {}}

#: ``(status, json body)`` or a callable of the request returning one (it may raise: an
#: ``OSError`` is "no answer", as a refused connection is).
Answer = tuple[int, Any] | Callable[[HTTPRequest], tuple[int, Any]]


def sandbox(sid: str = "sb-1", token: str = "tok-1", **extra: Any) -> dict:
    return {"id": sid, "status": "running", "public_host": AGENT, "auth_token": token, **extra}


class FakeSocket:
    """One agent WebSocket: replies are queued when an ``execute`` frame is sent."""

    def __init__(self, hopx: FakeHopx, url: str) -> None:
        self.hopx, self.url = hopx, url
        self.state = State.OPEN
        self.close_exc: ConnectionClosed | None = None
        self.sent: list[dict] = []
        self._inbox: asyncio.Queue = asyncio.Queue()

    async def send(self, text: str) -> None:
        if self.state is not State.OPEN:
            raise ConnectionClosed(None, None)
        frame = json.loads(text)
        self.sent.append(frame)
        if frame.get("type") == "execute":
            for item in self.hopx.replies.popleft() if self.hopx.replies else [COMPLETE]:
                self.agent_sends(item)

    def agent_sends(self, item: dict | int) -> None:
        """A frame from the agent, or (an int) the agent closing with that code."""
        self._inbox.put_nowait(item if isinstance(item, int) else json.dumps(item))

    def agent_closes(self, code: int = 1001) -> None:
        """The agent closes the socket now (e.g. its sandbox was deleted)."""
        if self.state is State.OPEN:
            self._end(ConnectionClosed(Close(code, ""), None))
            self._inbox.put_nowait(code)

    def __aiter__(self) -> FakeSocket:
        return self

    async def __anext__(self) -> str:
        if self.state is not State.OPEN:
            raise StopAsyncIteration
        item = await self._inbox.get()
        if isinstance(item, int):
            if self.state is State.OPEN:  # the agent closed it (else we did)
                self._end(ConnectionClosed(Close(item, ""), None))
            raise StopAsyncIteration
        return item

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.state is State.OPEN:
            self._end(ConnectionClosed(None, Close(code, reason)))
            self._inbox.put_nowait(code)

    def _end(self, exc: ConnectionClosed) -> None:
        self.state, self.close_exc = State.CLOSED, exc
        self.hopx.log.append(("CLOSED", self.url, exc.rcvd.code if exc.rcvd else None))


class FakeHopx:
    """The fake connector: control plane and agent in one table."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Answer] = {
            ("POST", "/v1/sandboxes"): (201, sandbox()),
            ("POST", "/v1/sandboxes/sb-1/token/refresh"): (200, {"auth_token": "tok-2"}),
            ("PUT", "/v1/sandboxes/sb-1/timeout"): (200, {}),
            ("DELETE", "/v1/sandboxes/sb-1"): (204, None),
            ("GET", "/health"): (200, HEALTH),
        }
        self.replies: deque[list[dict | int]] = deque()  # one list per execute frame
        self.sockets: list[FakeSocket] = []
        self.log: list[tuple] = []
        #: raised by the next connects (e.g. OSError: the agent is unreachable)
        self.refuse: BaseException | None = None

    def calls(self, kind: str) -> list[tuple]:
        return [entry for entry in self.log if entry[0] == kind]

    async def fetch(self, request: HTTPRequest) -> HTTPResponse:
        await asyncio.sleep(0)  # a request yields to the loop, as a real one does
        path = urlsplit(request.url).path
        self.log.append((request.method, path, dict(request.headers)))
        answer = self.routes.get((request.method, path), (404, {"error": {"message": "no route"}}))
        status, body = answer(request) if callable(answer) else answer
        raw = b"" if body is None else json.dumps(body).encode()
        return HTTPResponse(request, status, buffer=io.BytesIO(raw))

    async def websocket(self, url: str, **options: Any) -> FakeSocket:
        self.log.append(("WS", url, dict(options.get("additional_headers") or {})))
        await asyncio.sleep(0)  # a connect yields to the loop, as a real one does
        if self.refuse is not None:
            raise self.refuse
        ws = FakeSocket(self, url)
        self.sockets.append(ws)
        return ws

    def close(self) -> None:
        pass
