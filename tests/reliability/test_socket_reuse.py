"""What fast cells must not cost: nothing lost, order kept, whichever socket a cell rides.

Cloud mode against ``hopx-kernel serve --public-url <proxy>`` (the agent path runs through
a TCP proxy that counts connections and can cut them): an agent that keeps a socket for
several executions (docs/protocol.md §2.5 [ext]) and closes it when idle, a socket dropped
between two executions, and an agent without socket reuse (one execution per socket,
sockets opened ahead of need). The resend rule itself (a cell crossing the agent's idle
close is sent again once; a socket lost without a close frame is never resent) is driven
against a scripted agent on a real socket, since the race cannot be forced on the real one.
TLS failures: tests/reliability/test_tls.py.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from websockets.asyncio.server import serve

from hopx_kernel.agent import AgentClient
from hopx_kernel.errors import SandboxDisconnected
from hopx_kernel.frames import Execute, Stream

from ..support.kernels import execute
from ..support.local_server import start_server
from ..support.reliability import cloud_env, kernel, numbered_lines, wait_for
from .proxy import Proxy

#: A cell whose output is numbered lines ``start`` … ``start + 29``, stdout and stderr mixed.
CELL = (
    "import sys\nfor i in range({start}, {start} + 30):\n"
    "    (sys.stderr if i % 7 == 0 else sys.stdout).write(f'line {{i}}\\n')\n"
    "    if i % 7 == 0: sys.stderr.flush()\n"
)


def _proxied(*args: str):
    proxy = Proxy()
    server = start_server("--public-url", proxy.url, *args)
    proxy.target = ("127.0.0.1", int(server.base_url.rsplit(":", 1)[1]))
    server.proxy = proxy
    return server


@pytest.fixture(scope="module")
def reuse_server():
    """Agent sockets idle for 3 s are closed by the agent (long enough that back-to-back
    cells on a loaded machine never leave one idle that long)."""
    server = _proxied("--stream-idle-timeout", "3")
    yield server
    server.proxy.close()
    assert server.stop() == 0


@pytest.fixture(scope="module")
def eager_close_server():
    """The agent closes a reused socket the moment it is idle: every next cell races it."""
    server = _proxied("--stream-idle-timeout", "0")
    yield server
    server.proxy.close()
    assert server.stop() == 0


@pytest.fixture(scope="module")
def plain_server():
    server = _proxied("--no-stream-reuse")
    yield server
    server.proxy.close()
    assert server.stop() == 0


def run_numbered(kc, cells: int, first: int = 0) -> None:
    """``cells`` back-to-back cells; each must show its 30 lines, all of them, in order."""
    for k in range(cells):
        start = first + 30 * k
        cell = execute(kc, CELL.format(start=start))
        assert cell.status == "ok", cell.reply
        merged = [(t, c) for t, c in cell.outputs if t == "stream"]
        lines = numbered_lines("".join(c["text"] for _, c in merged))
        assert lines == list(range(start, start + 30)), f"lost or reordered: {lines}"
        assert numbered_lines(cell.stream("stderr")) == [i for i in range(start, start + 30) if i % 7 == 0]


def test_cells_share_one_socket_and_survive_the_agent_closing_it_when_idle(reuse_server):
    proxy = reuse_server.proxy
    with kernel(cloud_env(reuse_server)) as (_, kc):
        assert execute(kc, "kept = 'state'").status == "ok"
        before = proxy.connections
        run_numbered(kc, 8)
        assert proxy.connections == before, "back-to-back cells should ride the warm socket"
        # the agent closes the idle socket after 3 s: the next cell opens another
        ended = proxy.ended
        wait_for(lambda: proxy.ended > ended, 30, "the agent to close the idle socket")
        before = proxy.connections
        cell = execute(kc, "print(kept)")
        assert cell.status == "ok" and cell.stream() == "state\n"
        run_numbered(kc, 3, first=1000)
        assert proxy.connections >= before + 1


def test_agent_closing_each_socket_as_soon_as_idle_loses_no_cell(eager_close_server):
    """Whether the close arrives before the next cell, or crosses it on the wire (the cell is
    then sent again on a new socket), every cell runs once, with all its output."""
    with kernel(cloud_env(eager_close_server)) as (_, kc):
        assert execute(kc, "runs = 0").status == "ok"
        for k in range(12):
            cell = execute(kc, "runs += 1\nprint(runs)")
            assert cell.status == "ok", cell.reply
            assert cell.stream() == f"{k + 1}\n"  # never run twice, never skipped
        run_numbered(kc, 4)


def test_socket_dropped_between_two_executions(reuse_server):
    proxy = reuse_server.proxy
    with kernel(cloud_env(reuse_server)) as (_, kc):
        assert execute(kc, "kept = 41").status == "ok"
        run_numbered(kc, 2)
        proxy.cut()  # the warm socket (and any other) dies as a network failure would
        cell = execute(kc, "kept += 1\nprint(kept)")
        assert cell.status == "ok", cell.reply
        assert cell.stream() == "42\n"
        run_numbered(kc, 3, first=500)


def test_plain_agent_one_execution_per_socket(plain_server):
    """Without ``stream_reuse`` the kernel opens sockets ahead of need: one per cell, HopX's
    frames only, nothing lost."""
    proxy = plain_server.proxy
    with kernel(cloud_env(plain_server)) as (_, kc):
        assert execute(kc, "kept = 'plain'").status == "ok"
        before = proxy.connections
        run_numbered(kc, 10)
        assert proxy.connections >= before + 10
        cell = execute(kc, "print(kept)")
        assert cell.status == "ok" and cell.stream() == "plain\n"


# -- the resend rule, against a scripted agent (the race cannot be forced on the real one) --


async def _scripted_agent(second: str):
    """An agent that answers the first execute on a socket and then, for the second one on
    the same socket, does ``second``: "idle" closes with 1000 without running it (the idle
    close crossing the frame), "drop" cuts the TCP connection without a close frame."""
    runs: list[str] = []

    async def handler(ws):
        seen = 0
        async for raw in ws:
            frame = json.loads(raw)
            seen += 1
            if seen == 2 and second == "idle":
                await ws.close(1000, "idle")
                return
            if seen == 2 and second == "drop":
                ws.transport.abort()
                return
            runs.append(frame["code"])
            await ws.send(json.dumps({"type": "stdout", "data": frame["code"] + "\n"}))
            await ws.send(json.dumps({"type": "result", "exit_code": 0, "execution_time": 0.0}))
            await ws.send(json.dumps({"type": "complete", "success": True}))

    server = await serve(handler, "127.0.0.1", 0, compression=None)
    return server, runs


async def _two_cells(second: str):
    server, runs = await _scripted_agent(second)
    port = server.sockets[0].getsockname()[1]
    client = AgentClient(f"http://127.0.0.1:{port}", lambda: "token")
    client.reuse = True
    outs, error = [], None
    try:
        for code in ("a", "b"):
            execution = await client.open_execution(Execute(code=code, extensions=True))
            text = []
            try:
                async for batch in execution.batches():
                    text += [f.data for f in batch if isinstance(f, Stream)]
            except Exception as exc:  # the error the kernel would show
                error = exc
            outs.append("".join(text))
            await execution.close()
    finally:
        client.close()
        server.close()
        await server.wait_closed()
    return outs, runs, error


def test_a_cell_crossing_the_agents_idle_close_is_sent_again_once():
    outs, runs, error = asyncio.run(_two_cells("idle"))
    assert error is None
    assert outs == ["a\n", "b\n"]
    assert runs == ["a", "b"]  # "b" ran once, on a new socket


def test_a_reused_socket_lost_without_a_close_is_not_resent():
    """No close frame: the agent may have started the cell, so it is never sent twice."""
    outs, runs, error = asyncio.run(_two_cells("drop"))
    assert isinstance(error, SandboxDisconnected)
    assert outs == ["a\n", ""]
    assert runs == ["a"]
