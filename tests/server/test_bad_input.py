"""Bad frames and bad clients: each gets a clear error; server and sandbox stay usable."""

from __future__ import annotations

import asyncio
import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from websockets.exceptions import ConnectionClosed

from hopx_kernel import frames

from ..support.server_helpers import (
    collect,
    execute_stream,
    of_type,
    open_stream,
    read_stdout,
    run,
    stream_sync,
    text,
)


async def _first_frame_answer(server, sandbox, raw) -> list[dict]:
    async with open_stream(server, sandbox) as ws:
        await ws.send(raw)
        return await collect(ws, 20)


@pytest.mark.parametrize(
    "raw,code,needle",
    [
        ("{not json", "INVALID_JSON", "not valid JSON"),
        ("[1, 2]", "INVALID_JSON", "JSON object"),
        ('{"type": "launch"}', "INVALID_REQUEST", "unknown frame type 'launch'"),
        ('{"code": "1"}', "MISSING_PARAMETER", "no 'type'"),
        ('{"type": "execute"}', "MISSING_PARAMETER", "'code' is required"),
        ('{"type": "execute", "code": 5}', "INVALID_REQUEST", "'code' must be str"),
        ('{"type": "execute", "code": "1", "timeout": "x"}', "INVALID_REQUEST", "'timeout'"),
        ('{"type": "execute", "code": "1", "env": {"A": 1}}', "INVALID_REQUEST", "'env'"),
        ('{"type": "execute", "code": "1", "language": "cobol"}', "INVALID_REQUEST", "cobol"),
        ('{"type": "interrupt"}', "INVALID_REQUEST", "first frame must be 'execute'"),
    ],
)
def test_bad_first_frame(local_server, sandbox, raw, code, needle):
    got = run(_first_frame_answer(local_server, sandbox, raw))
    assert [f["type"] for f in got] == ["error", "complete"]
    assert got[0]["code"] == code and needle in got[0]["error"], got[0]
    assert got[1]["success"] is False


def test_oversized_frame(local_server, sandbox):
    huge = json.dumps({"type": "execute", "code": "x" * (1 << 20)})
    got = run(_first_frame_answer(local_server, sandbox, huge))
    assert got[0]["type"] == "error" and "1 MiB" in got[0]["error"]
    assert text(stream_sync(local_server, sandbox, "print('ok')")) == "ok\n"


def test_bad_frames_while_running_do_not_disturb(local_server, sandbox):
    async def scenario():
        code = "print('a', flush=True)\nimport time\ntime.sleep(0.5)\nprint('b')"
        async with execute_stream(local_server, sandbox, code) as ws:
            await read_stdout(ws, "a\n")
            for raw in (
                "{oops",
                '{"type": "nope"}',
                '{"type": "input_reply"}',
                json.dumps({"type": "execute", "code": "print(2)"}),
                json.dumps({"type": "input_reply", "value": "x"}),
            ):
                await ws.send(raw)
            got = await collect(ws, 20)
            try:  # after complete: ignored, and the server closes the socket
                await ws.send(json.dumps({"type": "execute", "code": "print(3)"}))
            except ConnectionClosed:
                pass
            async with asyncio.timeout(10):
                extra = [raw async for raw in ws]
            assert extra == [] and ws.close_code == 1000
            return got

    got = run(scenario())
    errors = [f["error"] for f in of_type(got, "error")]
    assert "an execution is already running on this connection" in errors
    # an [ext] frame on an execution that did not ask for extensions: unknown, as to HopX
    assert "unknown frame type 'input_reply'" in errors and len(errors) == 5
    assert text(got) == "b\n" and got[-1] == {"type": "complete", "success": True}


def test_vanished_client_interrupts_and_next_runs(local_server, sandbox):
    async def scenario():
        ws = await open_stream(local_server, sandbox)
        await ws.send(
            json.dumps({"type": "execute", "code": "import time\nprint('go', flush=True)\ntime.sleep(120)"})
        )
        await read_stdout(ws, "go\n")
        ws.transport.abort()  # vanish without a close handshake

    run(scenario())
    frames_ = stream_sync(local_server, sandbox, "print('next')")
    assert text(frames_) == "next\n"


JSONS = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)
FRAME_DICTS = st.fixed_dictionaries(
    {
        "type": st.sampled_from(["execute", "interrupt", "input_reply", "stdout", "", "EXECUTE"])
        | st.text(max_size=10)
    },
    optional={
        "code": JSONS | st.just("1+1"),
        "language": JSONS | st.just("python"),
        "timeout": JSONS,
        "env": JSONS,
        "workdir": JSONS,
        "value": JSONS,
        "allow_stdin": JSONS,
        "extensions": JSONS | st.just(1),
    },
)
RAW = st.one_of(
    st.text(max_size=60),
    JSONS.map(json.dumps),
    FRAME_DICTS.map(json.dumps),
    st.binary(max_size=40),
)


@settings(max_examples=60, deadline=None, suppress_health_check=list(HealthCheck))
@given(messages=st.lists(RAW, min_size=1, max_size=3))
def test_arbitrary_frames_never_break_the_server(local_server, sandbox, messages):
    async def scenario():
        async with open_stream(local_server, sandbox) as ws:
            for raw in messages:
                try:
                    await ws.send(raw)
                except Exception:
                    break  # the server may already have closed after a bad first frame
            got = []
            try:
                async with asyncio.timeout(20):
                    async for raw in ws:
                        frames.parse_agent_frame(raw)  # must not raise
                        got.append(json.loads(raw))
                        if got[-1]["type"] == "complete":
                            break
            except TimeoutError:
                # a valid execute that waits for input or runs long: interrupt it
                await ws.send(json.dumps({"type": "interrupt"}))
                got += await collect(ws, 20)
            return got

    got = run(scenario())
    assert got and got[-1]["type"] == "complete"
    assert text(stream_sync(local_server, sandbox, "print('alive')")) == "alive\n"
