"""A small loopback TCP proxy for fault tests: cut every connection, or stall them.

    proxy = Proxy()                      # listens on 127.0.0.1:<free port>
    proxy.target = ("127.0.0.1", port)   # may be set after start (chicken and egg)
    proxy.cut()      # close every open connection (new ones are still accepted)
    proxy.stall()    # stop relaying bytes both ways; sockets stay open
    proxy.resume()
    proxy.close()

Threads: one acceptor, two pumps per connection. Pumps wait (on an Event, with a
timeout so they notice ``close``) while stalled, so no byte moves and TCP pushes back.
"""

from __future__ import annotations

import socket
import threading


class Proxy:
    def __init__(self, target: tuple[str, int] | None = None) -> None:
        self.target = target
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.2)
        self.port = self._listener.getsockname()[1]
        self._flowing = threading.Event()
        self._flowing.set()
        self._closed = threading.Event()
        self._lock = threading.Lock()
        self._pairs: list[tuple[socket.socket, socket.socket]] = []
        self.connections = 0  # accepted so far
        self.ended = 0  # of those, closed by either side (counted when upstream's side ends)
        self._threads: list[threading.Thread] = []
        self._spawn(self._accept)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _spawn(self, fn, *args) -> None:
        thread = threading.Thread(target=fn, args=args, daemon=True)
        thread.start()
        self._threads.append(thread)

    def _accept(self) -> None:
        while not self._closed.is_set():
            try:
                client, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            try:
                assert self.target is not None, "Proxy.target is not set"
                upstream = socket.create_connection(self.target, timeout=5)
            except (OSError, AssertionError):
                client.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self._pairs.append((client, upstream))
                self.connections += 1
            self._spawn(self._pump, client, upstream)
            self._spawn(self._pump, upstream, client, True)

    def _pump(self, src: socket.socket, dst: socket.socket, counts: bool = False) -> None:
        try:
            while not self._closed.is_set():
                if not self._flowing.wait(0.2):
                    continue  # stalled: read nothing, send nothing
                data = src.recv(65536)
                if not data:
                    break
                while not self._flowing.is_set() and not self._closed.is_set():
                    self._flowing.wait(0.2)  # stalled after the read: hold the bytes
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for sock in (src, dst):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
            if counts:
                with self._lock:
                    self.ended += 1

    def cut(self) -> None:
        """Drop every open connection at once (as a network failure would)."""
        with self._lock:
            pairs, self._pairs = self._pairs, []
        for pair in pairs:
            for sock in pair:
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def stall(self) -> None:
        """Stop relaying bytes in both directions; connections stay open."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def close(self) -> None:
        self._closed.set()
        self._flowing.set()
        self.cut()
        self._listener.close()
        for thread in self._threads:
            thread.join(2)
