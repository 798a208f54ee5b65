"""``/kernel/channel`` and ``jupyter`` frames on the local server, driven over raw sockets:
gating, order, binary buffers, and bad input (malformed, oversized, out-of-order frames,
unknown comm ids, a comm flood while a cell prints)."""

from __future__ import annotations

import asyncio
import json
import uuid

import psutil
import pytest
from websockets.asyncio.client import connect

from hopx_kernel import frames, wire
from hopx_kernel.server.domain.channel_hub import IN_FLIGHT
from tests.support.server_helpers import agent, execute_stream, run, stream_sync, ws_headers

pytest.importorskip("ipywidgets")

#: comm messages in the flood (at ~1000 a second); each costs the sandbox's ipykernel a
#: few ms to handle afterwards, so more would only time the machine's load
FLOOD = 300
WIDGET = "import ipywidgets as w\ns = w.IntSlider()\nprint(s.model_id)\n"


def msg(msg_type: str, content: dict) -> dict:
    header = {
        "msg_id": uuid.uuid4().hex,
        "msg_type": msg_type,
        "session": "test",
        "username": "test",
        "date": "2026-01-01T00:00:00Z",
        "version": "5.3",
    }
    return {"header": header, "parent_header": {}, "metadata": {}, "content": content}


def update(comm_id: str, state: dict) -> dict:
    return msg(
        "comm_msg", {"comm_id": comm_id, "data": {"method": "update", "state": state, "buffer_paths": []}}
    )


async def execute(server, sandbox, code: str, limit: float = 120, **fields) -> list:
    """Run a cell over /execute/stream; every parsed frame up to ``complete``."""
    async with execute_stream(server, sandbox, code, max_size=None, **fields) as ws:
        out = []
        async with asyncio.timeout(limit):
            async for raw in ws:
                frame = frames.parse_agent_frame(raw)
                if frame is not None:
                    out.append(frame)
                if isinstance(frame, frames.Complete):
                    return out
    return out


def stdout(got: list) -> str:
    return "".join(f.data for f in got if isinstance(f, frames.Stream) and f.name == "stdout")


def channel(server, sandbox):
    return connect(
        f"{server.ws_url}/kernel/channel",
        additional_headers=ws_headers(sandbox),
        compression=None,
        max_size=None,
    )


def test_official_clients_get_no_jupyter_frames(local_server, sandbox):
    got = stream_sync(local_server, sandbox, WIDGET, extensions=None)
    assert {f["type"] for f in got} <= {"stdout", "result", "complete"}
    with_ext = run(execute(local_server, sandbox, WIDGET, extensions=1))
    opens = [f for f in with_ext if isinstance(f, frames.Jupyter) and f.msg["msg_type"] == "comm_open"]
    assert opens and opens[-1].msg["content"]["comm_id"] == stdout(with_ext).strip()


def test_channel_moves_a_widget_before_the_next_cell_and_survives_bad_frames(local_server, sandbox):
    async def scenario():
        got = await execute(local_server, sandbox, WIDGET, extensions=1)
        comm_id = stdout(got).strip()
        async with channel(local_server, sandbox) as ws:
            bad = [
                "{nope",
                "[]",
                json.dumps({"channel": "stdin", "msg": msg("comm_msg", {})}),
                json.dumps({"channel": "shell", "msg": msg("execute_request", {"code": "1/0"})}),
                json.dumps({"channel": "shell", "msg": {"header": {}}}),
                json.dumps({"channel": "shell", "seq": -1, "msg": update(comm_id, {})}),
                b"\x00\x00\x00\x09garbage",
                json.dumps(
                    {
                        "channel": "shell",
                        "msg": update(comm_id, {}),
                        "pad": "x" * (wire.MAX_CHANNEL_FRAME + 1),
                    }
                ),
            ]
            for raw in bad:
                await ws.send(raw)
                answer = json.loads(await asyncio.wait_for(ws.recv(), 10))
                assert answer["type"] == "error" and answer["error"], raw[:40]
            # an unknown comm id and out-of-order numbers are delivered and harmless
            await ws.send(
                json.dumps({"channel": "shell", "seq": 5, "msg": update("no-such-comm", {"value": 1})})
            )
            await ws.send(json.dumps({"channel": "shell", "seq": 3, "msg": update(comm_id, {"value": 9})}))
            await ws.send(json.dumps({"channel": "shell", "seq": 6, "msg": update(comm_id, {"value": 77})}))
            got = await execute(local_server, sandbox, "print(s.value)", extensions=1, channel_seq=6)
            assert stdout(got) == "77\n"
            # the echo comes back on the channel, parented by our message
            echoes = []
            async with asyncio.timeout(10):
                while len(echoes) < 2:
                    raw = await ws.recv()
                    frame = wire.parse_channel_frame(raw, from_client=False)
                    if frame.msg["msg_type"] == "comm_msg":
                        echoes.append(frame.msg["content"]["data"]["state"])
            assert echoes == [{"value": 9}, {"value": 77}]

    run(scenario())


def test_binary_buffers_both_ways(local_server, sandbox):
    async def scenario():
        code = "import ipywidgets as w\nimg = w.Image(value=b'\\x00\\x01\\xff', format='png')\nprint(img.model_id)"
        got = await execute(local_server, sandbox, code, extensions=1)
        comm_id = stdout(got).strip()
        opened = next(
            f
            for f in got
            if isinstance(f, frames.Jupyter)
            and f.msg["content"].get("comm_id") == comm_id
            and f.msg["msg_type"] == "comm_open"
        )
        assert opened.buffers == (b"\x00\x01\xff",)
        data = {"method": "update", "state": {}, "buffer_paths": [["value"]]}
        frame = wire.ChannelFrame(
            "shell", msg("comm_msg", {"comm_id": comm_id, "data": data}), [b"\xfe" * 100_000], 1
        )
        async with channel(local_server, sandbox) as ws:
            await ws.send(wire.encode_channel_frame(frame))
            got = await execute(
                local_server, sandbox, "print(img.value == b'\\xfe' * 100_000)", extensions=1, channel_seq=1
            )
        assert stdout(got) == "True\n"

    run(scenario())


BURST = 500


def test_a_burst_of_updates_a_handler_sends_reaches_the_channel_whole_and_in_order(local_server, sandbox):
    """A comm handler (an observer of the slider) sets another widget BURST times: those
    updates and the handler's idle leave the server back to back, some written at once and
    the rest queued behind them; the client gets every one, in order, then the idle."""
    code = (
        WIDGET
        + "t = w.IntText()\n"
        + f"s.observe(lambda change: [setattr(t, 'value', i) for i in range({BURST})], 'value')\n"
        + "print(t.model_id)\n"
    )

    async def scenario():
        got = await execute(local_server, sandbox, code, extensions=1)
        slider, text = stdout(got).split()
        async with channel(local_server, sandbox) as ws:
            moved = update(slider, {"value": 5})
            await ws_send(ws, {"channel": "shell", "seq": 1, "msg": moved})
            values: list[int] = []
            async with asyncio.timeout(60):
                while True:
                    frame = wire.parse_channel_frame(await ws.recv(), from_client=False)
                    m = frame.msg
                    assert m["parent_header"].get("msg_id") == moved["header"]["msg_id"], m["msg_type"]
                    if m["msg_type"] == "comm_msg" and m["content"]["comm_id"] == text:
                        values.append(m["content"]["data"]["state"]["value"])
                    if m["msg_type"] == "status":
                        assert m["content"]["execution_state"] == "idle"
                        break
        assert values == list(range(1, BURST)), values[:20]  # (0 is its value already)

    run(scenario())


@pytest.mark.timeout(300)
def test_a_comm_flood_while_a_cell_prints_loses_nothing_and_stays_bounded(local_server, sandbox):
    server = psutil.Process(local_server.proc.pid)
    code = "import time\nfor i in range(1500):\n    print(i)\n    time.sleep(0.0005)\n"

    async def scenario():
        got = await execute(local_server, sandbox, WIDGET, extensions=1)
        comm_id = stdout(got).strip()
        before = server.memory_info().rss
        async with channel(local_server, sandbox) as ws:

            async def drain():  # a frontend reads what comes back (echoes)
                async for _ in ws:
                    pass

            reader = asyncio.ensure_future(drain())
            cell = asyncio.ensure_future(execute(local_server, sandbox, code, extensions=1))
            sent = 0
            while not cell.done() and sent < FLOOD:  # ~1000 a second while the cell prints
                for _ in range(10):
                    sent += 1
                    await ws.send(
                        json.dumps(
                            {"channel": "shell", "seq": sent, "msg": update(comm_id, {"value": sent % 100})}
                        )
                    )
                await asyncio.sleep(0.01)
            got = await cell
            assert sent == FLOOD or stdout(got).count("\n") == 1500
            assert stdout(got) == "".join(f"{i}\n" for i in range(1500))
            assert sent > 100
            grown = server.memory_info().rss - before
            assert grown < 64 * 1024 * 1024, f"server grew {grown >> 20} MB"
            after = await execute(local_server, sandbox, "print(s.value)", extensions=1, channel_seq=sent)
            assert stdout(after) == f"{sent % 100}\n"
            reader.cancel()

    run(scenario())


@pytest.mark.timeout(300)
def test_a_flood_beyond_what_a_busy_kernel_holds_is_dropped_with_one_error_and_the_next_cell_runs(
    local_server, sandbox
):
    """A frontend sends comm messages as fast as it can while a cell prints. The busy
    kernel handles none of them until the cell ends, so the server hands it at most
    IN_FLIGHT and drops the rest with one CHANNEL_FULL error frame: the cell's output
    arrives whole and in order, the next cell runs behind at most IN_FLIGHT messages, and
    the channel then works as before."""
    server = psutil.Process(local_server.proc.pid)
    flood = IN_FLIGHT + 1000
    cell = (
        "import os, time\ni = 0\nwhile not os.path.exists('flood-done'):\n"
        "    print(i)\n    i += 1\n    time.sleep(0.001)\nprint('end')\n"
    )

    async def scenario():
        got = await execute(local_server, sandbox, WIDGET, extensions=1)
        comm_id = stdout(got).strip()
        before = server.memory_info().rss
        sent_ids: set[str] = set()
        echoed: set[str] = set()
        refusals: list[dict] = []
        read_all = asyncio.Event()
        async with channel(local_server, sandbox) as ch:

            async def drain():  # the frontend reads what comes back: echoes, error frames
                async for raw in ch:
                    refusal = wire.channel_refusal(raw)
                    if refusal is not None:
                        refusals.append(json.loads(raw))
                        if refusal[0] == "INVALID_JSON":
                            read_all.set()
                        continue
                    frame = wire.parse_channel_frame(raw, from_client=False)
                    if frame.msg["msg_type"] == "comm_msg":
                        echoed.add(frame.msg["parent_header"].get("msg_id"))

            reader = asyncio.ensure_future(drain())
            async with execute_stream(local_server, sandbox, cell, max_size=None, extensions=1) as ws:
                frames_: list = []
                async with asyncio.timeout(60):  # the cell is running once it prints
                    while not any(isinstance(f, frames.Stream) for f in frames_):
                        frames_.append(frames.parse_agent_frame(await ws.recv()))
                for n in range(1, flood + 1):  # as fast as the socket takes them
                    m = update(comm_id, {"value": n % 50})
                    sent_ids.add(m["header"]["msg_id"])
                    await ws_send(ch, {"channel": "shell", "seq": n, "msg": m})
                # a malformed frame's error answer says the server has read the whole flood
                await ch.send("{nope")
                await asyncio.wait_for(read_all.wait(), 60)
                wrote = await asyncio.to_thread(
                    agent,
                    local_server,
                    sandbox,
                    "POST",
                    "/files/write",
                    json={"path": "flood-done", "content": "x"},
                )
                assert wrote.status_code == 200, wrote.text
                async with asyncio.timeout(120):
                    while not isinstance(frames_[-1], frames.Complete):
                        frames_.append(frames.parse_agent_frame(await ws.recv()))
            out = stdout([f for f in frames_ if f is not None])
            lines = out.splitlines()
            assert lines[-1] == "end" and lines[:-1] == [str(i) for i in range(len(lines) - 1)]
            # the next cell runs after the messages the kernel was given, then the channel
            # carries an update as before
            after = await execute(local_server, sandbox, "print(s.value)", extensions=1, channel_seq=flood)
            assert 0 <= int(stdout(after)) < 50
            await ch.send(
                json.dumps({"channel": "shell", "seq": flood + 1, "msg": update(comm_id, {"value": 77})})
            )
            after = await execute(
                local_server, sandbox, "print(s.value)", extensions=1, channel_seq=flood + 1
            )
            assert stdout(after) == "77\n"
            reader.cancel()
        handled = echoed & sent_ids
        assert 0 < len(handled) <= IN_FLIGHT, f"the busy kernel was handed {len(handled)} of {flood}"
        codes = [r["code"] for r in refusals]  # told of the drops, not once per drop
        assert codes[0] == "CHANNEL_FULL" and codes[-1] == "INVALID_JSON", codes
        assert set(codes[:-1]) == {"CHANNEL_FULL"} and len(codes) < 10, codes
        assert "throttle" in refusals[0]["error"]
        grown = server.memory_info().rss - before
        assert grown < 64 * 1024 * 1024, f"server grew {grown >> 20} MB"

    run(scenario())


async def ws_send(ws, obj: dict) -> None:
    await ws.send(json.dumps(obj))
