"""The channel-frame codec (hopx_kernel.wire): literal layouts, strict parsing, bookkeeping."""

from __future__ import annotations

import json
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hopx_kernel import frames, wire
from hopx_kernel.errors import FrameError

MSG = wire.MSG


def test_pack_is_the_jupyter_server_layout():
    raw = wire.pack({"a": 1}, [b"xy", b""])
    assert raw == struct.pack(">4I", 3, 16, 23, 25) + b'{"a":1}' + b"xy"
    assert wire.unpack(raw) == ({"a": 1}, [b"xy", b""])


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"\x00\x00\x00\x01",
        struct.pack(">2I", 0, 8),
        struct.pack(">2I", 1, 7) + b"{}",
        struct.pack(">3I", 2, 12, 11) + b"{}",
        struct.pack(">2I", 1, 8) + b"{nope",
        struct.pack(">I", 10_000) + b"\x00" * 8,
        b'{"type":"stdout"}',
    ],
)
def test_unpack_refuses_bad_layouts(raw):
    with pytest.raises(FrameError):
        wire.unpack(raw)


@given(st.binary(max_size=200))
def test_unpack_never_crashes(raw):
    try:
        wire.unpack(raw)
    except FrameError:
        pass


def test_client_frames_are_checked_strictly():
    ok = wire.parse_channel_frame(json.dumps({"channel": "shell", "seq": 1, "msg": MSG}))
    assert (ok.channel, ok.seq, ok.msg["msg_type"]) == ("shell", 1, "comm_msg")
    bad = [
        "nope",
        "[]",
        json.dumps({"channel": "stdin", "msg": MSG}),
        json.dumps({"channel": "shell", "msg": {**MSG, "header": {"msg_id": "x"}}}),
        json.dumps({"channel": "shell", "msg": {**MSG, "content": []}}),
        json.dumps({"channel": "shell", "seq": 0, "msg": MSG}),
        json.dumps({"channel": "shell", "seq": True, "msg": MSG}),
        json.dumps({"channel": "control", "msg": MSG}),  # comm_msg belongs on shell
        json.dumps({"channel": ["shell"], "msg": MSG}),  # not a string (and not hashable)
        json.dumps(
            {"channel": "shell", "msg": {**MSG, "header": {**MSG["header"], "msg_type": "execute_request"}}}
        ),
    ]
    for raw in bad:
        with pytest.raises(FrameError):
            wire.parse_channel_frame(raw)
    with pytest.raises(FrameError):
        wire.parse_channel_frame(b"x" * (wire.MAX_CHANNEL_FRAME + 1))


def test_binary_channel_frames_carry_buffers():
    frame = wire.ChannelFrame("iopub", MSG, [b"\x00\x01"], None)
    raw = wire.encode_channel_frame(frame)
    assert isinstance(raw, bytes)
    back = wire.parse_channel_frame(raw, from_client=False)
    assert back.buffers == [b"\x00\x01"] and back.msg["content"] == MSG["content"]
    assert isinstance(wire.encode_channel_frame(wire.ChannelFrame("iopub", MSG)), str)


@pytest.mark.parametrize("buffers", [[], [b"\x00"]])
def test_a_lone_surrogate_in_a_message_travels_intact(buffers):
    # a frontend's JSON may escape one ("\ud800" in widget state): UTF-8 cannot write it, so
    # the frame must not raise on its way through the kernel or the server
    msg = dict(MSG, content={**MSG["content"], "data": {chr(0xD800): "x" + chr(0xDFFF)}})
    raw = wire.encode_channel_frame(wire.ChannelFrame("iopub", msg, buffers))
    if isinstance(raw, str):
        raw.encode("utf-8")  # a text frame the WebSocket can send
    back = wire.parse_channel_frame(raw, from_client=False)
    assert back.msg["content"] == msg["content"] and back.buffers == buffers


def test_seq_tracker_never_moves_back():
    t = wire.SeqTracker()
    assert [t.note(s) for s in (1, 2, 5, 3, None)] == [True, True, False, False, True]
    assert (t.forwarded, t.out_of_order) == (5, 1)
    assert t.reached(5) and not t.reached(6) and t.reached(None)


def test_comm_tracker_forgets_closed_comms():
    c = wire.CommTracker()
    for kind, cid in [("comm_open", "a"), ("comm_open", "b"), ("comm_close", "a"), ("comm_msg", "z")]:
        c.see(kind, {"comm_id": cid})
    c.see("comm_open", {"comm_id": 3})
    assert c.take_all() == ["b"] and c.take_all() == []


def test_jupyter_agent_frames_text_and_binary():
    text = '{"type":"jupyter","msg":' + json.dumps(MSG) + "}"
    frame = frames.parse_agent_frame(text)
    assert isinstance(frame, frames.Jupyter) and frame.buffers == ()
    raw = frames.encode(frames.Jupyter(MSG, (b"img",)))
    assert frames.parse_agent_frame(raw).buffers == (b"img",)
    with pytest.raises(FrameError):
        frames.parse_agent_frame('{"type":"jupyter","msg":{"header":{}}}')
    assert frames.parse_agent_frame(b'{"type":"stdout","data":"x"}') == frames.Stream("stdout", "x")


def test_execute_extension_fields():
    raw = frames.encode(frames.Execute("1", extensions=True, msg_id="m", channel_seq=4))
    assert json.loads(raw) == {
        "type": "execute",
        "code": "1",
        "language": "python",
        "extensions": 1,
        "msg_id": "m",
        "channel_seq": 4,
    }
    assert frames.parse_client_frame(raw).channel_seq == 4
    with pytest.raises(FrameError):
        frames.parse_client_frame('{"type":"execute","code":"1","channel_seq":-1}')
