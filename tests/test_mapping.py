"""Sandbox frames → Jupyter messages (docs/protocol.md §3)."""

from __future__ import annotations

from hopx_kernel.frames import (
    AgentError,
    ClearOutput,
    Complete,
    Display,
    ExecuteResult,
    InputRequest,
    Result,
    Stream,
)
from hopx_kernel.mapping import CellMapper, coalesce, jupyter_safe, parse_traceback

# Real CPython 3.11 output (python -c ...).
CHAINED = """\
Traceback (most recent call last):
  File "<string>", line 4, in <module>
KeyError: 'k'

The above exception was the direct cause of the following exception:

Traceback (most recent call last):
  File "<string>", line 6, in <module>
ValueError: wrapped
"""
CUSTOM = """\
Traceback (most recent call last):
  File "<string>", line 1, in <module>
  File "/tmp/tbgen/mymod.py", line 4, in boom
    raise MyError("bad thing: 42")
mymod.MyError: bad thing: 42
"""
SYNTAX = """\
  File "/tmp/tbgen/s.py", line 1
    x = = 1
        ^
SyntaxError: invalid syntax
"""
# CPython 3.13 with colours on (PYTHON_COLORS=1).
COLOURED = (
    "Traceback (most recent call last):\n"
    '  File \x1b[35m"<string>"\x1b[0m, line \x1b[35m4\x1b[0m, in \x1b[35m<module>\x1b[0m\n'
    '  File \x1b[35m"<string>"\x1b[0m, line \x1b[35m3\x1b[0m, in \x1b[35mf\x1b[0m\n'
    "    \x1b[31mreturn \x1b[0m\x1b[1;31m1/0\x1b[0m\n"
    "\x1b[1;35mZeroDivisionError\x1b[0m: \x1b[35mdivision by zero\x1b[0m\n"
)


def run(frames, count=1, ids=None):
    """Feed frames to a fresh mapper; (all messages, execute_reply content)."""
    mapper = CellMapper(count, ids)
    out = []
    for frame in frames:
        out += mapper.feed(frame)
    return out, mapper.finish()


def errors(messages):
    return [content for kind, content in messages if kind == "error"]


# ------------------------------------------------------------------ streams and displays


def test_stdout_and_stderr_become_stream_messages_untouched():
    messages, reply = run(
        [Stream("stdout", "10%\r20%\r"), Stream("stderr", "warn é 😀\n"), Result(), Complete(True)]
    )
    assert messages == [
        ("stream", {"name": "stdout", "text": "10%\r20%\r"}),
        ("stream", {"name": "stderr", "text": "warn é 😀\n"}),
    ]
    assert reply["status"] == "ok"


def test_empty_stream_chunk_publishes_nothing():
    assert run([Stream("stdout", "")])[0] == []


def test_display_becomes_display_data():
    frame = Display({"image/png": "iVBOR", "text/plain": "<Figure>"}, {"image/png": {"width": 4}})
    assert run([frame])[0] == [
        (
            "display_data",
            {
                "data": {"image/png": "iVBOR", "text/plain": "<Figure>"},
                "metadata": {"image/png": {"width": 4}},
                "transient": {},
            },
        )
    ]


def test_second_display_with_same_id_is_an_update():
    first = Display({"text/plain": "0%"}, {}, {"display_id": "bar"})
    second = Display({"text/plain": "100%"}, {}, {"display_id": "bar"})
    other = Display({"text/plain": "x"}, {}, {"display_id": "other"})
    kinds = [kind for kind, _ in run([first, second, other])[0]]
    assert kinds == ["display_data", "update_display_data", "display_data"]


def test_display_ids_carry_across_cells_sharing_the_set():
    known: set[str] = set()
    frame = Display({"text/plain": "v"}, {}, {"display_id": "d1"})
    assert run([frame], count=1, ids=known)[0][0][0] == "display_data"
    update = run([frame], count=2, ids=known)[0][0]
    assert update == (
        "update_display_data",
        {"data": {"text/plain": "v"}, "metadata": {}, "transient": {"display_id": "d1"}},
    )
    assert known == {"d1"}


def test_clear_output():
    assert run([ClearOutput(True), ClearOutput(False)])[0] == [
        ("clear_output", {"wait": True}),
        ("clear_output", {"wait": False}),
    ]


def test_result_with_data_is_execute_result_with_the_kernels_count():
    messages, reply = run([Result(data={"text/plain": "42"}, metadata={"m": 1}), Complete(True)], count=7)
    assert messages == [
        ("execute_result", {"execution_count": 7, "data": {"text/plain": "42"}, "metadata": {"m": 1}})
    ]
    assert reply == {"status": "ok", "execution_count": 7, "payload": [], "user_expressions": {}}


def test_in_order_execute_result_keeps_its_place_before_later_displays():
    figure = Display({"image/png": "iVBOR"})
    frames = [ExecuteResult({"text/plain": "[<Line2D>]"}), figure, Result(), Complete(True)]
    messages, reply = run(frames, count=4)
    assert [t for t, _ in messages] == ["execute_result", "display_data"]
    assert messages[0][1]["execution_count"] == 4
    assert reply["status"] == "ok"


def test_input_request_passes_through():
    assert run([InputRequest("Name? ", True)])[0] == [
        ("input_request", {"prompt": "Name? ", "password": True})
    ]


# ------------------------------------------------------------------ errors


def test_structured_error():
    tb = ["Traceback (most recent call last):", "ZeroDivisionError: division by zero"]
    messages, reply = run(
        [
            Stream("stdout", "before\n"),
            Result(exit_code=1, ename="ZeroDivisionError", evalue="division by zero", traceback=tb),
            Complete(False),
        ],
        count=4,
    )
    assert messages[-1] == (
        "error",
        {"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": tb},
    )
    assert len(errors(messages)) == 1
    assert reply == {
        "status": "error",
        "execution_count": 4,
        "ename": "ZeroDivisionError",
        "evalue": "division by zero",
        "traceback": tb,
    }


def test_result_data_and_error_both_shown():
    messages, _ = run([Result(exit_code=1, data={"text/plain": "1"}, ename="E", evalue="v", traceback=[])])
    assert [kind for kind, _ in messages] == ["execute_result", "error"]


def _from_stderr(stderr, chunk=None):
    """Error parsed from stderr by an agent without extensions; stderr sent in chunks."""
    chunk = chunk or len(stderr)
    frames = [Stream("stderr", stderr[i : i + chunk]) for i in range(0, len(stderr), chunk)]
    messages, reply = run([*frames, Result(exit_code=1), Complete(False)])
    assert len(errors(messages)) == 1
    assert reply["status"] == "error"
    return reply


def test_error_parsed_from_plain_traceback():
    reply = _from_stderr(
        'Traceback (most recent call last):\n  File "<string>", line 4, in <module>\n'
        '  File "<string>", line 3, in f\nZeroDivisionError: division by zero\n',
        chunk=7,
    )
    assert (reply["ename"], reply["evalue"]) == ("ZeroDivisionError", "division by zero")
    assert reply["traceback"][0] == "Traceback (most recent call last):"
    assert reply["traceback"][-1] == "ZeroDivisionError: division by zero"


def test_error_parsed_from_coloured_traceback():
    reply = _from_stderr(COLOURED, chunk=5)
    assert (reply["ename"], reply["evalue"]) == ("ZeroDivisionError", "division by zero")
    assert not any("\x1b" in line for line in reply["traceback"])


def test_error_parsed_from_chained_traceback_is_the_last_exception():
    reply = _from_stderr(CHAINED)
    assert (reply["ename"], reply["evalue"]) == ("ValueError", "wrapped")
    assert reply["traceback"] == [
        "Traceback (most recent call last):",
        '  File "<string>", line 6, in <module>',
        "ValueError: wrapped",
    ]


def test_error_parsed_from_syntax_error():
    reply = _from_stderr(SYNTAX)
    assert (reply["ename"], reply["evalue"]) == ("SyntaxError", "invalid syntax")


def test_error_parsed_from_custom_module_exception():
    reply = _from_stderr(CUSTOM)
    assert (reply["ename"], reply["evalue"]) == ("MyError", "bad thing: 42")  # as IPython names it
    assert reply["traceback"][-1] == "mymod.MyError: bad thing: 42"


def test_error_parsed_after_stdout_and_notes():
    reply = _from_stderr("Traceback (most recent call last):\nKeyError: 'k'\nwhile loading config\n")
    assert (reply["ename"], reply["evalue"]) == ("KeyError", "'k'")


def test_nonzero_exit_without_traceback_is_execution_failed():
    messages, reply = run(
        [
            Stream("stderr", "ls: cannot access 'x': No such file or directory\n"),
            Result(exit_code=2),
            Complete(False),
        ]
    )
    assert errors(messages) == [
        {
            "ename": "ExecutionFailed",
            "evalue": "the code exited with status 2",
            "traceback": ["the code exited with status 2"],
        }
    ]
    assert reply["ename"] == "ExecutionFailed"


def test_zero_exit_with_traceback_on_stderr_is_not_an_error():
    messages, reply = run([Stream("stderr", CHAINED), Result(exit_code=0), Complete(True)])
    assert errors(messages) == []
    assert reply["status"] == "ok"


def test_agent_error_frame_is_sandbox_error():
    messages, reply = run([AgentError("the agent ran out of memory", "INTERNAL_ERROR"), Complete(False)])
    assert errors(messages) == [
        {
            "ename": "SandboxError",
            "evalue": "the agent ran out of memory",
            "traceback": ["SandboxError: the agent ran out of memory"],
        }
    ]
    assert (reply["status"], reply["ename"], reply["evalue"]) == (
        "error",
        "SandboxError",
        "the agent ran out of memory",
    )


def test_timeout_is_one_execution_timeout_error():
    mapper = CellMapper(1)
    messages = mapper.feed(Stream("stdout", "working\n"))
    messages += mapper.feed(AgentError("execution timed out after 5 s", "EXECUTION_TIMEOUT"))
    messages += mapper.feed(
        Result(exit_code=1, ename="KeyboardInterrupt", evalue="", traceback=["KeyboardInterrupt"])
    )
    messages += mapper.feed(Complete(False))
    assert [e["ename"] for e in errors(messages)] == ["ExecutionTimeout"]
    reply = mapper.finish()
    assert (reply["ename"], reply["evalue"]) == ("ExecutionTimeout", "execution timed out after 5 s")
    assert mapper.agent_error_code == "EXECUTION_TIMEOUT"


def test_agent_error_code_is_the_first():
    mapper = CellMapper(1)
    mapper.feed(AgentError("a", "SANDBOX_DIED"))
    mapper.feed(AgentError("b", "EXECUTION_TIMEOUT"))
    assert mapper.agent_error_code == "SANDBOX_DIED"
    assert CellMapper(1).agent_error_code is None


def test_frames_after_complete_are_ignored():
    messages, reply = run([Complete(True), Stream("stdout", "late"), AgentError("late"), Result(exit_code=1)])
    assert messages == []
    assert reply["status"] == "ok"


def test_failed_complete_without_error_is_an_error():
    messages, reply = run([Stream("stdout", "x"), Complete(False)])
    assert reply["status"] == "error"
    assert reply["ename"] == "ExecutionFailed"
    assert errors(messages) == [
        {k: reply[k] for k in ("ename", "evalue", "traceback")}
    ]  # shown, not only replied


def test_fail_records_one_error():
    mapper = CellMapper(3)
    assert mapper.fail("SandboxDisconnected", "the connection dropped") == [
        (
            "error",
            {
                "ename": "SandboxDisconnected",
                "evalue": "the connection dropped",
                "traceback": ["SandboxDisconnected: the connection dropped"],
            },
        )
    ]
    assert mapper.fail("KeyboardInterrupt", "again") == []
    assert mapper.feed(Result(exit_code=1, ename="E", evalue="v", traceback=[])) == []
    reply = mapper.finish()
    assert (reply["status"], reply["execution_count"], reply["ename"]) == ("error", 3, "SandboxDisconnected")


def test_finish_ok_shape():
    assert CellMapper(9).finish() == {
        "status": "ok",
        "execution_count": 9,
        "payload": [],
        "user_expressions": {},
    }


# ------------------------------------------------------------------ parse_traceback


def test_parse_traceback_ignores_ordinary_stderr():
    assert parse_traceback("") is None
    assert parse_traceback("/tmp/x.py:3: UserWarning: careful\n  warnings.warn('careful')\n") is None
    assert parse_traceback("<string>:1: DeprecationWarning: old API\n") is None
    assert parse_traceback("2025-01-01 12:00:00 INFO loaded 3 rows\nWARNING:root:slow disk\n") is None
    assert parse_traceback("ERROR:root:could not connect\n") is None
    assert parse_traceback("100%|██████████| 10/10 [00:01<00:00]\r") is None


def test_parse_traceback_ignores_an_old_error_followed_by_chatter():
    old = CHAINED + "".join(f"step {i} done\n" for i in range(5))
    assert parse_traceback(old) is None


def test_parse_traceback_exception_without_message():
    parsed = parse_traceback('Traceback (most recent call last):\n  File "x", line 1\nKeyboardInterrupt\n')
    assert (parsed.ename, parsed.evalue) == ("KeyboardInterrupt", "")


# ------------------------------------------------------------------ coalesce


def test_coalesce_merges_runs_and_keeps_order():
    frames = [
        Stream("stdout", "a"),
        Stream("stdout", "b\r"),
        Stream("stderr", "E1"),
        Stream("stderr", "E2"),
        Stream("stdout", "c"),
        Display({"text/plain": "d"}),
        Stream("stdout", "e"),
        Stream("stdout", "f"),
    ]
    assert coalesce(frames) == [
        Stream("stdout", "ab\r"),
        Stream("stderr", "E1E2"),
        Stream("stdout", "c"),
        Display({"text/plain": "d"}),
        Stream("stdout", "ef"),
    ]


def test_coalesce_respects_the_limit_and_keeps_every_byte():
    frames = [Stream("stdout", "x" * 4) for _ in range(5)] + [Stream("stdout", "y" * 20)]
    out = coalesce(frames, limit=10)
    assert [len(f.data) for f in out] == [8, 8, 4, 20]  # a single big frame is kept whole
    assert "".join(f.data for f in out) == "x" * 20 + "y" * 20


def test_coalesce_leaves_other_frames_alone():
    frames = [Result(exit_code=0), Complete(True)]
    assert coalesce(frames) == frames
    assert coalesce([]) == []


def test_result_payload_reaches_the_execute_reply():
    page = {"source": "page", "data": {"text/plain": "Docstring: ..."}, "start": 0}
    mapper = CellMapper(execution_count=4)
    assert mapper.feed(Result(exit_code=0, payload=[page])) == []
    mapper.feed(Complete(True))
    reply = mapper.finish()
    assert reply["status"] == "ok" and reply["payload"] == [page]


def test_a_lost_sandbox_error_says_what_happens_next():
    mapper = CellMapper(1, lost_hint="The next cell runs in a new sandbox.")
    (msg,) = mapper.feed(AgentError("the sandbox's Python process died; its state is lost", "SANDBOX_DIED"))
    assert msg[1]["ename"] == "SandboxDied"
    assert (
        msg[1]["evalue"]
        == "the sandbox's Python process died; its state is lost. The next cell runs in a new sandbox."
    )
    other = CellMapper(1, lost_hint="ignored for other codes")
    (msg,) = other.feed(AgentError("disk full", "EXECUTION_FAILED"))
    assert (msg[1]["ename"], msg[1]["evalue"]) == ("SandboxError", "disk full")


def test_jupyter_safe_replaces_what_a_message_cannot_carry():
    stream = {"name": "stdout", "text": "plain é 😀\r\n"}
    assert jupyter_safe(stream) is stream  # nothing to do: the same object, no copy
    assert jupyter_safe({"name": "stdout", "text": "a\ud800b\udfff"}) == {
        "name": "stdout",
        "text": "a\ufffdb\ufffd",
    }
    content = {
        "data": {"text/plain": "\ud83d", "x/y": [float("nan"), float("inf"), 1.5]},
        "transient": {"\udc80": 1},
    }
    assert jupyter_safe(content) == {
        "data": {"text/plain": "\ufffd", "x/y": [None, None, 1.5]},
        "transient": {"\ufffd": 1},
    }
    fine = {"data": {"text/plain": "ok"}, "metadata": {}}
    assert jupyter_safe(fine) is fine


def test_exception_group_from_stderr_is_recognised():
    # CPython 3.11's own output for
    # raise ExceptionGroup('several things went wrong', [ValueError('one'), TypeError('two')])
    stderr = (
        "  + Exception Group Traceback (most recent call last):\n"
        '  |   File "<string>", line 1, in <module>\n'
        "  | ExceptionGroup: several things went wrong (2 sub-exceptions)\n"
        "  +-+---------------- 1 ----------------\n"
        "    | ValueError: one\n"
        "    +---------------- 2 ----------------\n"
        "    | TypeError: two\n"
        "    +------------------------------------\n"
    )
    parsed = parse_traceback("some output first\n" + stderr)
    assert (parsed.ename, parsed.evalue) == ("ExceptionGroup", "several things went wrong (2 sub-exceptions)")
    assert parsed.traceback[0].endswith("Exception Group Traceback (most recent call last):")
    assert parsed.traceback[-2] == "    | TypeError: two"
    messages, reply = run([Stream("stderr", stderr), Result(exit_code=1), Complete(False)])
    assert (reply["ename"], reply["evalue"]) == (
        "ExceptionGroup",
        "several things went wrong (2 sub-exceptions)",
    )
