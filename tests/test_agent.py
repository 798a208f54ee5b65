"""AgentClient and Execution.batches over the in-memory transport (no sockets).

The same paths over real sockets: tests/reliability/test_socket_reuse.py, test_faults.py.
"""

from __future__ import annotations

import asyncio

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from hopx_kernel.agent import AgentClient
from hopx_kernel.errors import (
    HopxKernelError,
    SandboxDisconnected,
    SandboxExpired,
    SandboxStalled,
    Unreachable,
)
from hopx_kernel.frames import Complete, Execute, Stream

from .support.fake_transport import AGENT, COMPLETE, FakeHopx


def out(text: str) -> dict:
    return {"type": "stdout", "data": text}


async def run(agent: AgentClient, code: str = "x") -> tuple[list[list], object]:
    execution = await agent.open_execution(Execute(code=code))
    batches = [batch async for batch in execution.batches()]
    await execution.close()
    return batches, execution


def scenario(fn):
    """Run ``fn(hopx, agent)`` on a fresh loop with a fresh fake."""

    async def main():
        hopx = FakeHopx()
        agent = AgentClient(AGENT, lambda: "tok", connector=hopx)
        try:
            return await fn(hopx, agent)
        finally:
            agent.close()

    return asyncio.run(main())


def test_frames_that_arrived_together_are_one_batch_and_complete_ends_it():
    async def fn(hopx, agent):
        hopx.replies.append(
            [out("a"), "", {"type": "bogus"}, {"type": "stdout", "data": 5}, out("b"), COMPLETE]
        )
        batches, execution = await run(agent)
        assert batches == [[Stream("stdout", "a"), Stream("stdout", "b"), Complete(success=True)]]
        assert execution.received == 6  # keepalive, unknown and malformed frames counted, skipped
        ws_calls = hopx.calls("WS")
        assert ws_calls[0][1] == "wss://sandbox-1.fake.hopx.test/execute/stream"  # https → wss
        assert ws_calls[0][2] == {"Authorization": "Bearer tok"}
        sent = hopx.sockets[0].sent
        assert len(sent) == 1 and sent[0]["type"] == "execute" and sent[0]["code"] == "x"

    scenario(fn)


def test_a_socket_closed_before_complete_is_a_disconnect_naming_the_code():
    async def fn(hopx, agent):
        hopx.replies.append([out("partial"), 1011])
        with pytest.raises(SandboxDisconnected) as info:
            await run(agent)
        assert not isinstance(info.value, SandboxStalled)
        assert "close code 1011" in info.value.line()

    scenario(fn)


def test_a_socket_we_closed_for_missed_pongs_is_a_stall():
    async def fn(hopx, agent):
        execution = await agent.open_execution(Execute(code="x"))
        await hopx.sockets[0].close(1011, "keepalive ping timeout")  # what websockets does
        with pytest.raises(SandboxStalled):
            [b async for b in execution.batches()]

    scenario(fn)


def test_an_agent_that_reuses_sockets_carries_two_cells_on_one():
    async def fn(hopx, agent):
        agent.reuse = True
        hopx.replies.extend([[out("1"), COMPLETE], [out("2"), COMPLETE]])
        await run(agent)
        agent.prepare()  # the warm socket is open: nothing new is connected
        batches, _ = await run(agent)
        assert batches[0][0] == Stream("stdout", "2")
        assert len(hopx.calls("WS")) == 1 and len(hopx.sockets[0].sent) == 2

    scenario(fn)


def test_a_reused_socket_closed_as_idle_resends_the_cell_once_on_a_new_one():
    async def fn(hopx, agent):
        agent.reuse = True
        hopx.replies.extend([[COMPLETE], [1000], [out("ran"), COMPLETE]])
        await run(agent)
        batches, execution = await run(agent)
        assert execution.resent and batches[0][0] == Stream("stdout", "ran")
        assert len(hopx.calls("WS")) == 2

    scenario(fn)


def test_a_plain_agent_gets_sockets_opened_ahead_of_the_next_cell():
    async def fn(hopx, agent):
        await run(agent)
        await asyncio.sleep(0)  # let the spare's connect start
        assert len(hopx.calls("WS")) == 2  # the cell's own and one spare
        await run(agent)
        assert hopx.sockets[1].sent  # the second cell took the spare

    scenario(fn)


def test_connect_failures_become_our_errors():
    async def fn(hopx, agent):
        hopx.refuse = InvalidStatus(Response(410, "Gone", Headers(), b'{"error": "sandbox expired"}'))
        with pytest.raises(SandboxExpired):
            await agent.open_execution(Execute(code="x"))
        hopx.refuse = ConnectionRefusedError(111, "refused")
        with pytest.raises(Unreachable, match="Could not connect to the sandbox"):
            await agent.open_execution(Execute(code="x"))

    scenario(fn)


def test_no_socket_is_opened_once_close_has_begun():
    async def fn(hopx, agent):
        agent.close()
        agent.prepare()
        with pytest.raises(HopxKernelError, match="shutting down"):
            await agent.open_execution(Execute(code="x"))
        await asyncio.sleep(0)
        assert hopx.calls("WS") == []

    scenario(fn)
