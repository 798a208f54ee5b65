"""Jupyter messages → frames (hopx_kernel/server/domain/to_frames.py): literal messages in,
exact frame objects out. Mirrors tests/test_mapping.py (frames → Jupyter)."""

from __future__ import annotations

from hopx_kernel.frames import MAX_FRAME_BYTES, to_dict
from hopx_kernel.server.domain.to_frames import cell_ending, plain_msg, to_frames


def msg(msg_type: str, content: dict, **extra) -> dict:
    return {"header": {"msg_id": "m1", "msg_type": msg_type}, "content": content, **extra}


def dicts(message: dict, **flags) -> list[dict]:
    return [to_dict(frame) for frame in to_frames(message, **flags)]


def test_stream_stdout_and_stderr():
    assert dicts(msg("stream", {"name": "stdout", "text": "a\r\nb\u00e9"})) == [
        {"type": "stdout", "data": "a\r\nb\u00e9"}
    ]
    assert dicts(msg("stream", {"name": "stderr", "text": "oops\n"})) == [
        {"type": "stderr", "data": "oops\n"}
    ]


def test_stream_with_another_name_is_stdout():
    assert dicts(msg("stream", {"name": "weird", "text": "x"})) == [{"type": "stdout", "data": "x"}]


def test_large_stream_text_is_cut_into_frames_keeping_every_character():
    text = "x" * (3 * MAX_FRAME_BYTES)
    out = dicts(msg("stream", {"name": "stdout", "text": text}))
    assert len(out) > 1
    assert {d["type"] for d in out} == {"stdout"}
    assert "".join(d["data"] for d in out) == text


def test_display_and_update_display():
    content = {
        "data": {"text/plain": "p", "text/html": "<b>p</b>"},
        "metadata": {"isolated": True},
        "transient": {"display_id": "d1"},
    }
    expected = [
        {
            "type": "display",
            "data": {"text/plain": "p", "text/html": "<b>p</b>"},
            "metadata": {"isolated": True},
            "transient": {"display_id": "d1"},
        }
    ]
    assert dicts(msg("display_data", content)) == expected
    assert dicts(msg("update_display_data", content)) == expected
    assert dicts(msg("display_data", {"data": {"text/plain": "p"}})) == [
        {"type": "display", "data": {"text/plain": "p"}, "metadata": {}, "transient": {}}
    ]


def test_clear_output():
    assert dicts(msg("clear_output", {"wait": True})) == [{"type": "clear_output", "wait": True}]
    assert dicts(msg("clear_output", {})) == [{"type": "clear_output", "wait": False}]


def test_execute_result_is_kept_for_the_result_frame_unless_in_order():
    result = msg("execute_result", {"execution_count": 4, "data": {"text/plain": "2"}, "metadata": {"m": 1}})
    assert dicts(result) == []
    assert dicts(result, extensions=True) == []
    assert cell_ending(result) == {"data": {"text/plain": "2"}, "metadata": {"m": 1}}
    assert dicts(result, extensions=True, in_order=True) == [
        {"type": "execute_result", "data": {"text/plain": "2"}, "metadata": {"m": 1}}
    ]
    assert cell_ending(result, in_order=True) == {}


def test_error_is_never_a_frame_of_its_own():
    error = msg(
        "error", {"ename": "ZeroDivisionError", "evalue": "division by zero", "traceback": ["t1", "t2"]}
    )
    assert dicts(error) == []
    assert dicts(error, extensions=True, in_order=True) == []
    assert cell_ending(error) == {
        "ename": "ZeroDivisionError",
        "evalue": "division by zero",
        "traceback": ["t1", "t2"],
    }
    assert cell_ending(msg("error", {})) == {"ename": "Error", "evalue": "", "traceback": []}


def test_status_and_execute_input_are_never_forwarded():
    for message in (msg("status", {"execution_state": "busy"}), msg("execute_input", {"code": "1"})):
        assert dicts(message) == []
        assert dicts(message, extensions=True) == []
        assert cell_ending(message) == {}


def test_comm_messages_travel_whole_only_with_extensions():
    comm = msg(
        "comm_msg",
        {"comm_id": "c1", "data": {"method": "update"}},
        parent_header={"msg_id": "cell"},
        metadata={"version": "2.1.0"},
        buffers=[memoryview(b"\x00\x01"), b"ab"],
    )
    assert to_frames(comm) == []
    [frame] = to_frames(comm, extensions=True)
    assert to_dict(frame) == {
        "type": "jupyter",
        "msg": {
            "header": {"msg_id": "m1", "msg_type": "comm_msg"},
            "parent_header": {"msg_id": "cell"},
            "metadata": {"version": "2.1.0"},
            "content": {"comm_id": "c1", "data": {"method": "update"}},
            "msg_type": "comm_msg",
        },
    }
    assert frame.buffers == (b"\x00\x01", b"ab")
    assert all(type(b) is bytes for b in frame.buffers)
    assert cell_ending(comm) == {}


def test_comm_open_without_buffers_has_none():
    [frame] = to_frames(msg("comm_open", {"comm_id": "c2", "target_name": "jupyter.widget"}), extensions=True)
    assert frame.buffers == ()
    assert frame.msg["msg_type"] == "comm_open"


def test_plain_msg_fills_missing_parts():
    assert plain_msg({"header": {"msg_type": "comm_close"}, "parent_header": None, "content": None}) == {
        "header": {"msg_type": "comm_close"},
        "parent_header": {},
        "metadata": {},
        "content": {},
        "msg_type": "comm_close",
    }
