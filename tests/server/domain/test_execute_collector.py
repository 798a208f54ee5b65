"""The blocking ``/execute`` answer (hopx_kernel/server/domain/execute_collector.py): frames
in, the exact flat JSON body out."""

from __future__ import annotations

import asyncio

from hopx_kernel.frames import AgentError, Display, ExecuteResult, Result, Stream
from hopx_kernel.server.domain.execute_collector import ExecuteCollector


def collect(frames, max_output: int = 1000) -> ExecuteCollector:
    collector = ExecuteCollector(max_output)

    async def feed() -> None:
        for frame in frames:
            await collector.emit(frame)

    asyncio.run(feed())
    return collector


def test_streams_rich_output_and_the_value():
    collector = collect(
        [
            Stream("stdout", "a\n"),
            Stream("stderr", "w\n"),
            Display({"text/html": "<b>x</b>", "image/png": "iVBO", "text/plain": "x"}),
            Stream("stdout", "b\n"),
            Result(exit_code=0, execution_time=0.25, data={"text/plain": "42"}),
        ]
    )
    assert collector.body(True, "python") == {
        "success": True,
        "stdout": "a\nb\n",
        "stderr": "w\n",
        "exit_code": 0,
        "execution_time": 0.25,
        "language": "python",
        "html": "<b>x</b>",
        "png": "iVBO",
        "result": "42",
    }


def test_an_in_order_value_is_the_result_too():
    collector = collect([ExecuteResult({"text/plain": "7", "text/markdown": "*7*"}), Result()])
    body = collector.body(True, "python")
    assert body["result"] == "7" and body["markdown"] == "*7*"


def test_a_traceback_goes_to_stderr_without_colours():
    collector = collect(
        [Result(exit_code=1, ename="E", evalue="x", traceback=["\x1b[31mTraceback\x1b[0m", "E: x"])]
    )
    body = collector.body(False, "python")
    assert body["stderr"] == "Traceback\nE: x\n"
    assert body["exit_code"] == 1 and body["success"] is False


def test_an_error_frame_without_a_result():
    collector = collect([Stream("stderr", "partial"), AgentError("took too long", "EXECUTION_TIMEOUT")])
    assert collector.body(False, "bash") == {
        "success": False,
        "stdout": "",
        "stderr": "partial\ntook too long",
        "exit_code": 1,
        "execution_time": 0.0,
        "language": "bash",
        "error": "took too long",
        "message": "took too long",
        "code": "EXECUTION_TIMEOUT",
    }


def test_output_past_the_cap_is_dropped_and_said():
    collector = collect([Stream("stdout", "x" * 6), Stream("stderr", "y" * 6), Result()], max_output=8)
    body = collector.body(True, "python")
    assert body["stdout"] == "xxxxxx"
    assert body["stderr"].startswith("yy\n[hopx] 4 characters of output were dropped")
