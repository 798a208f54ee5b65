"""A stream client that stops reading: memory stays bounded, the deadline still fires, the
client is dropped, and every other sandbox keeps answering."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import socket
import struct
import time

import pytest

from ..support.local_server import start_server
from .attack import agent, answers_quickly, create, delete, rss_mb

FLOOD = "import sys\nwhile True:\n    sys.stdout.write('z' * 2**20)\n"
#: The attacked server drops a client that reads nothing for this many seconds.
CLIENT_TIMEOUT = 3


@pytest.fixture(scope="module")
def slow_target():
    server = start_server("--pool-size", "1", "--client-timeout", str(CLIENT_TIMEOUT))
    a, b = create(server), create(server)
    yield server, a, b
    delete(server, a)
    delete(server, b)
    assert server.stop() == 0


def deaf_client(server, sandbox: dict, frame: dict) -> socket.socket:
    """A WebSocket client that sends one frame and then never reads (a raw socket with a
    small receive buffer, so the server's writes back up at once)."""
    host, port = server.base_url.split("://", 1)[1].split(":")
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /execute/stream HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Authorization: Bearer {sandbox['auth_token']}\r\n\r\n"
        ).encode()
    )
    head = b""
    while b"\r\n\r\n" not in head:
        head += sock.recv(1)
    assert head.startswith(b"HTTP/1.1 101"), head
    payload = json.dumps(frame).encode()
    mask = os.urandom(4)
    header = b"\x81" + (
        bytes([0x80 | 126]) + struct.pack("!H", len(payload))
        if len(payload) >= 126
        else bytes([0x80 | len(payload)])
    )
    sock.sendall(header + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))
    return sock


def wait_usable(server, sandbox: dict, limit: float) -> float:
    """Seconds until ``sandbox`` runs a new execution (the flood ended)."""
    started = time.monotonic()
    r = agent(server, sandbox, "POST", "/execute", json={"code": "print('free')"}, timeout=limit)
    assert r.json()["stdout"] == "free\n", r.text
    return time.monotonic() - started


@pytest.mark.parametrize("timeout", [3, None])
def test_a_client_that_never_reads(slow_target, timeout):
    server, attacker, bystander = slow_target
    before = rss_mb(server)
    frame = {"type": "execute", "code": FLOOD, **({"timeout": timeout} if timeout else {})}
    sock = deaf_client(server, attacker, frame)
    try:
        started = time.monotonic()
        peak = before
        while time.monotonic() - started < 6:
            peak = max(peak, rss_mb(server))
            answers_quickly(server, bystander)
        assert peak - before < 150, f"server memory grew {peak - before:.0f} MB"
        # the timeout fired (or the deaf client was dropped) although nothing was read
        waited = wait_usable(server, attacker, 30)
        assert time.monotonic() - started < 6 + 15, waited
    finally:
        sock.close()
    if timeout is None:
        assert "dropping a stream client that read nothing" in server.stderr_path.read_text()


def test_cells_on_one_reused_socket_never_hang(slow_target):
    """Four cells on one socket, 30 times: each next execute is sent the moment
    ``complete`` arrives, and none is lost (the reuse step and ``complete`` are one step)."""
    from ..support.server_helpers import open_stream

    server, sandbox, _ = slow_target

    async def cells() -> list[str]:
        async with open_stream(server, sandbox) as ws:
            printed = []
            for i in range(4):
                ext = {"extensions": 1} if i < 3 else {}  # the last one closes the socket
                await ws.send(
                    json.dumps({"type": "execute", **ext, "code": f"n = 0 if {i} == 0 else n + 1\nprint(n)"})
                )

                async def until_complete() -> None:
                    async for raw in ws:
                        frame = json.loads(raw)
                        if frame["type"] == "stdout":
                            printed.append(frame["data"])
                        if frame["type"] == "complete":
                            return

                await asyncio.wait_for(until_complete(), 20)
            return printed

    for attempt in range(30):
        try:
            printed = asyncio.run(cells())
        except asyncio.TimeoutError:
            pytest.fail(f"attempt {attempt}: a cell on the reused socket never completed")
        assert "".join(printed) == "0\n1\n2\n3\n", (attempt, printed)
