"""A loopback TCP proxy that delays every chunk, standing in for a far-away sandbox.

Each direction is delayed by half the round trip: a chunk read at ``t`` is written at
``t + rtt/2``, in order. Reading stops while a direction holds ``MAX_BUFFERED`` bytes not
yet written (TCP pushes back on the sender), so the proxy's memory stays bounded. It
listens on 127.0.0.1 only and runs on its own event loop in a daemon thread.

Example:
    >>> proxy = DelayProxy(rtt=0.08).start()      # doctest: +SKIP
    >>> proxy.target = ("127.0.0.1", 8080)        # doctest: +SKIP
    >>> proxy.url("http")                         # doctest: +SKIP
    'http://127.0.0.1:40123'
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time

#: Bytes in flight per direction before the proxy stops reading.
MAX_BUFFERED = 4 * 1024 * 1024
CHUNK = 256 * 1024


class DelayProxy:
    """Forward 127.0.0.1:``port`` to ``target``, adding ``rtt`` seconds per round trip."""

    def __init__(self, rtt: float, target: tuple[str, int] | None = None) -> None:
        self.rtt = rtt
        self.target = target
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, daemon=True, name=f"delay-proxy-{rtt * 1e3:.0f}ms"
        )
        self._server: asyncio.base_events.Server | None = None
        self._tasks: set[asyncio.Task] = set()

    def __repr__(self) -> str:
        return f"<DelayProxy {self.rtt * 1e3:.0f} ms on :{self.port} -> {self.target}>"

    def url(self, scheme: str = "http") -> str:
        return f"{scheme}://127.0.0.1:{self.port}"

    def start(self) -> DelayProxy:
        self._thread.start()
        self._server = asyncio.run_coroutine_threadsafe(
            asyncio.start_server(self._handle, "127.0.0.1", 0), self._loop
        ).result(10)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    def stop(self) -> None:
        if not self._loop.is_running():
            return

        async def shut() -> None:
            if self._server is not None:
                self._server.close()
            tasks = list(self._tasks)
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            await asyncio.sleep(0.01)  # let the closed transports finish

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    async def _handle(self, creader: asyncio.StreamReader, cwriter: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        self._tasks.add(task)
        swriter = None
        try:
            assert self.target is not None, "DelayProxy.target is not set"
            sreader, swriter = await asyncio.open_connection(*self.target)
            for w in (cwriter, swriter):
                w.get_extra_info("socket").setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            pipes = [
                asyncio.ensure_future(self._pipe(creader, swriter)),
                asyncio.ensure_future(self._pipe(sreader, cwriter)),
            ]
            try:
                await asyncio.gather(*pipes)
            finally:
                for p in pipes:
                    p.cancel()
                await asyncio.gather(*pipes, return_exceptions=True)
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            cwriter.close()
            if swriter is not None:
                swriter.close()
            self._tasks.discard(task)

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """Copy one direction, each chunk held back by half the round trip."""
        delay = self.rtt / 2
        queue: asyncio.Queue = asyncio.Queue()
        room = asyncio.Semaphore(max(1, MAX_BUFFERED // CHUNK))

        async def send() -> None:
            while True:
                due, data = await queue.get()
                if data is None:
                    break
                wait = due - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
                writer.write(data)
                room.release()
                await writer.drain()
            if writer.can_write_eof():
                writer.write_eof()

        sender = asyncio.ensure_future(send())
        try:
            while True:
                await room.acquire()
                data = await reader.read(CHUNK)
                if not data:
                    break
                await queue.put((time.monotonic() + delay, data))
        except OSError:
            pass
        finally:
            queue.put_nowait((0.0, None))
            try:
                await sender
            except (OSError, asyncio.CancelledError):
                sender.cancel()
