"""The transport seam: how the kernel opens WebSockets and sends HTTP requests.

:class:`~hopx_kernel.agent.AgentClient`, :class:`~hopx_kernel.controlplane.ControlPlane`
and the kernel channel take a connector, as httpx's clients take a transport. The real
one, :class:`Connector`, is websockets' ``connect`` and tornado's HTTP client; tests pass
an in-memory one (tests/support/fake_transport.py) with the same two methods.

Errors are left as the libraries raise them (``InvalidStatus``, ``OSError``, tornado's
599 response): translating them is the callers' job (:mod:`.http`, :mod:`.agent`), so a
fake that raises the same exceptions exercises the same translation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse

if TYPE_CHECKING:  # websockets loads on the first WebSocket: a cloud create goes out ~25 ms sooner
    from websockets.asyncio.client import ClientConnection


class Transport(Protocol):
    """What a connector does (the fake implements the same)."""

    async def websocket(self, url: str, **options: Any) -> ClientConnection: ...

    async def fetch(self, request: HTTPRequest) -> HTTPResponse: ...

    def close(self) -> None: ...


class Connector:
    """WebSockets through ``websockets.asyncio.client.connect``, HTTP through a tornado
    client of its own (made on first use, on the running loop)."""

    def __init__(self) -> None:
        self._http: AsyncHTTPClient | None = None

    async def websocket(self, url: str, **options: Any) -> ClientConnection:
        """An open WebSocket; ``options`` are ``connect``'s (headers, ssl, pings, ...)."""
        from websockets.asyncio.client import connect

        return await connect(url, **options)

    async def fetch(self, request: HTTPRequest) -> HTTPResponse:
        """The response, whatever its status (tornado's 599 when there was none)."""
        if self._http is None:
            # a client of one's own: tornado shares one per loop unless asked not to
            self._http = AsyncHTTPClient(force_instance=True)
        return await self._http.fetch(request, raise_error=False)

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None


__all__ = ["Connector", "Transport"]
