"""Frames of /execute/stream (docs/protocol.md §2.1, §2.2): parsing, validation, encoding."""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hopx_kernel.errors import FrameError
from hopx_kernel.frames import (
    CHUNK_CHARS,
    MAX_FRAME_BYTES,
    AgentError,
    ClearOutput,
    Complete,
    Display,
    Execute,
    ExecuteResult,
    InputReply,
    InputRequest,
    Interrupt,
    Result,
    Stream,
    encode,
    encode_utf8,
    hopx_frames,
    parse_agent_frame,
    parse_client_frame,
    split_text,
)
from hopx_kernel.text import SURROGATE

# ------------------------------------------------------------------ agent → client


def test_stdout_and_stderr_frames():
    assert parse_agent_frame('{"type":"stdout","data":"a\\n","timestamp":"t"}') == Stream("stdout", "a\n")
    assert parse_agent_frame('{"type":"stderr","data":"oops"}') == Stream("stderr", "oops")


def test_stream_text_kept_exactly():
    raw = json.dumps({"type": "stdout", "data": "10%\r20%\r\n\x1b[31mred\x1b[0m é 😀"})
    assert parse_agent_frame(raw) == Stream("stdout", "10%\r20%\r\n\x1b[31mred\x1b[0m é 😀")


def test_plain_result_frame():
    frame = parse_agent_frame('{"type":"result","exit_code":1,"execution_time":0.25}')
    assert frame == Result(exit_code=1, execution_time=0.25)
    assert frame.data is None and frame.ename is None


def test_result_with_data_and_structured_error():
    frame = parse_agent_frame(
        json.dumps(
            {
                "type": "result",
                "exit_code": 1,
                "execution_time": 2,
                "data": {"text/plain": "3"},
                "metadata": {"k": 1},
                "ename": "ZeroDivisionError",
                "evalue": "division by zero",
                "traceback": ["Traceback...", "ZeroDivisionError: division by zero"],
            }
        )
    )
    assert frame == Result(
        exit_code=1,
        execution_time=2.0,
        data={"text/plain": "3"},
        metadata={"k": 1},
        ename="ZeroDivisionError",
        evalue="division by zero",
        traceback=["Traceback...", "ZeroDivisionError: division by zero"],
    )


def test_complete_frame():
    assert parse_agent_frame('{"type":"complete","success":true}') == Complete(True)
    assert parse_agent_frame('{"type":"complete","success":false}') == Complete(False)


def test_error_frame():
    frame = parse_agent_frame(
        '{"type":"error","error":"timed out","code":"EXECUTION_TIMEOUT","timestamp":"t"}'
    )
    assert frame == AgentError("timed out", "EXECUTION_TIMEOUT")


def test_error_frame_without_code_or_message():
    frame = parse_agent_frame('{"type":"error"}')
    assert isinstance(frame, AgentError)
    assert frame.code == "EXECUTION_FAILED"
    assert frame.error  # some text to show the user


def test_display_frame():
    frame = parse_agent_frame(
        '{"type":"display","data":{"text/html":"<b>x</b>"},"metadata":{},"transient":{"display_id":"d1"}}'
    )
    assert frame == Display({"text/html": "<b>x</b>"}, {}, {"display_id": "d1"})


def test_clear_output_and_input_request_frames():
    assert parse_agent_frame('{"type":"clear_output","wait":true}') == ClearOutput(True)
    assert parse_agent_frame('{"type":"clear_output"}') == ClearOutput(False)
    assert parse_agent_frame('{"type":"input_request","prompt":"Name? ","password":true}') == InputRequest(
        "Name? ", True
    )


@pytest.mark.parametrize(
    "raw", ["", "   ", "\n", "ping", "{not json", "[1, 2]", '"text"', "42", "null", b"", b"  "]
)
def test_keepalives_are_none(raw):
    assert parse_agent_frame(raw) is None


@pytest.mark.parametrize("raw", ['{"type":"progress","pct":5}', '{"data":"no type"}', '{"type":7}'])
def test_unknown_types_are_skipped(raw):
    assert parse_agent_frame(raw) is None


@pytest.mark.parametrize(
    "raw",
    [
        '{"type":"stdout","data":5}',
        '{"type":"stderr","data":["a"]}',
        '{"type":"result","exit_code":"1"}',
        '{"type":"result","exit_code":true}',
        '{"type":"result","execution_time":"fast"}',
        '{"type":"result","traceback":"not a list"}',
        '{"type":"result","traceback":["ok", 3]}',
        '{"type":"result","data":"text"}',
        '{"type":"result","ename":5}',
        '{"type":"result","execution_time":1' + "0" * 400 + "}",
        '{"type":"display"}',
        '{"type":"display","data":[]}',
        '{"type":"display","data":{},"transient":"x"}',
        '{"type":"input_request","prompt":1}',
    ],
)
def test_known_frames_with_wrong_field_types_raise(raw):
    with pytest.raises(FrameError):
        parse_agent_frame(raw)


def test_binary_frames_are_decoded():
    raw = '{"type":"stdout","data":"héllo 😀"}'.encode()
    assert parse_agent_frame(raw) == Stream("stdout", "héllo 😀")
    assert parse_agent_frame(bytearray(raw)) == Stream("stdout", "héllo 😀")


def test_deeply_nested_json_is_not_a_crash():
    assert parse_agent_frame("[" * 100_000 + "]" * 100_000) is None
    with pytest.raises(FrameError) as info:
        parse_client_frame("[" * 100_000 + "]" * 100_000)
    assert info.value.code == "INVALID_JSON"


# ------------------------------------------------------------------ client → agent


def test_execute_with_all_fields():
    frame = parse_client_frame(
        json.dumps(
            {
                "type": "execute",
                "code": "print(1)",
                "language": "python",
                "timeout": 60,
                "workdir": "/workspace",
                "env": {"K": "V"},
                "allow_stdin": True,
            }
        )
    )
    assert frame == Execute("print(1)", "python", 60.0, "/workspace", {"K": "V"}, True)


def test_execute_defaults():
    assert parse_client_frame('{"type":"execute","code":""}') == Execute("")
    assert parse_client_frame('{"type":"execute","code":"x","language":null}').language == "python"


@pytest.mark.parametrize(
    "given_language, language",
    [
        ("python3", "python"),
        ("Python", "python"),
        ("node", "javascript"),
        ("nodejs", "javascript"),
        ("js", "javascript"),
        ("sh", "bash"),
        ("shell", "bash"),
        ("go", "go"),
    ],
)
def test_language_aliases(given_language, language):
    frame = parse_client_frame(json.dumps({"type": "execute", "code": "x", "language": given_language}))
    assert frame.language == language


def test_unsupported_language():
    with pytest.raises(FrameError, match="unsupported language 'cobol'") as info:
        parse_client_frame('{"type":"execute","code":"x","language":"cobol"}')
    assert info.value.code == "INVALID_REQUEST"


@pytest.mark.parametrize("raw", ['{"type":"execute"}', '{"type":"execute","code":null}', '{"code":"x"}'])
def test_missing_parameter(raw):
    with pytest.raises(FrameError) as info:
        parse_client_frame(raw)
    assert info.value.code == "MISSING_PARAMETER"


@pytest.mark.parametrize("raw", ["", "{", "not json", b"\xff\xfe{", "[]", '"execute"', "null"])
def test_invalid_json(raw):
    with pytest.raises(FrameError) as info:
        parse_client_frame(raw)
    assert info.value.code == "INVALID_JSON"


@pytest.mark.parametrize(
    "raw, words",
    [
        ('{"type":"run","code":"x"}', "unknown frame type 'run'"),
        ('{"type":"execute","code":5}', "'code' must be str"),
        ('{"type":"execute","code":"x","env":["K=V"]}', "'env' must be an object"),
        ('{"type":"execute","code":"x","env":{"K":1}}', "'env' must map strings to strings"),
        ('{"type":"execute","code":"x","timeout":-1}', "'timeout' must be a finite number >= 0"),
        ('{"type":"execute","code":"x","timeout":NaN}', "'timeout' must be a finite number >= 0"),
        ('{"type":"execute","code":"x","timeout":Infinity}', "'timeout' must be a finite number >= 0"),
        ('{"type":"execute","code":"x","timeout":"60"}', "'timeout' must be number"),
        ('{"type":"execute","code":"x","timeout":1' + "0" * 400 + "}", "'timeout' is out of range"),
        ('{"type":"input_reply"}', "'value' must be a string"),
        ('{"type":"execute","code":"x","execution_count":0}', "'execution_count' must be an integer >= 1"),
        ('{"type":"execute","code":"x","execution_count":"3"}', "'execution_count' must be int"),
        ('{"type":"execute","code":"x","execution_count":true}', "'execution_count' must be a number"),
    ],
)
def test_invalid_request(raw, words):
    with pytest.raises(FrameError, match=words.replace("(", r"\(")) as info:
        parse_client_frame(raw)
    assert info.value.code == "INVALID_REQUEST"


def test_oversized_binary_frame_refused():
    with pytest.raises(FrameError, match="1 MiB"):
        parse_client_frame(b" " * (MAX_FRAME_BYTES + 1))


def test_working_dir_alias():
    frame = parse_client_frame('{"type":"execute","code":"x","working_dir":"/tmp"}')
    assert frame.workdir == "/tmp"
    both = parse_client_frame('{"type":"execute","code":"x","workdir":"/a","working_dir":"/b"}')
    assert both.workdir == "/a"


def test_execute_carries_the_notebooks_execution_count():
    assert parse_client_frame('{"type":"execute","code":"x","execution_count":12}').execution_count == 12
    assert parse_client_frame('{"type":"execute","code":"x"}').execution_count is None


def test_execute_result_frame_is_parsed_in_order():
    raw = '{"type":"execute_result","data":{"text/plain":"42"},"metadata":{}}'
    assert parse_agent_frame(raw) == ExecuteResult({"text/plain": "42"})


def test_interrupt_and_input_reply():
    assert parse_client_frame('{"type":"interrupt"}') == Interrupt()
    assert parse_client_frame('{"type":"input_reply","value":"Ada"}') == InputReply("Ada")
    assert parse_client_frame(b'{"type":"input_reply","value":""}') == InputReply("")


# ------------------------------------------------------------------ encoding

TRICKY = 'a\rb\r\n\t\x00\x1f"\\ é 中 😀 \U0010ffff \u2028 \ud800 \udfff'

EVERY_FRAME = [
    Stream("stdout", TRICKY),
    Stream("stderr", ""),
    Result(),
    Result(exit_code=2, execution_time=1.5),
    Result(data={"text/plain": TRICKY, "image/png": "iVBOR"}, metadata={"m": [1, None]}),
    Result(exit_code=1, ename="ValueError", evalue=TRICKY, traceback=["l1", TRICKY]),
    Complete(True),
    Complete(False),
    AgentError(TRICKY, "EXECUTION_TIMEOUT"),
    Display({"text/html": TRICKY}, {"isolated": True}, {"display_id": "d"}),
    ClearOutput(True),
    ExecuteResult({"text/plain": TRICKY}, {"m": 1}),
    InputRequest(TRICKY, True),
    Execute(TRICKY),
    Execute("x", execution_count=7),
    Execute("x", "bash", 30.0, "/w", {"K": TRICKY}, True),
    Execute("x", extensions=True),
    InputReply(TRICKY),
    Interrupt(),
]


@pytest.mark.parametrize("frame", EVERY_FRAME, ids=lambda f: type(f).__name__)
def test_encode_round_trips(frame):
    text = encode(frame)
    text.encode("utf-8")  # sendable as a WebSocket text frame, lone surrogates included
    parse = parse_client_frame if isinstance(frame, (Execute, InputReply, Interrupt)) else parse_agent_frame
    assert parse(text) == frame
    assert parse(text.encode("utf-8")) == frame


def test_encode_is_compact_and_keeps_unicode_unescaped():
    assert encode(Stream("stdout", "é😀\r")) == '{"type":"stdout","data":"é😀\\r"}'
    assert encode(Complete(True), timestamp="2025-01-01T00:00:00Z") == (
        '{"type":"complete","success":true,"timestamp":"2025-01-01T00:00:00Z"}'
    )


@pytest.mark.parametrize("data", ["", "x" * 300_000, 'a"\\\n\x1b\ud800é😀'])
@pytest.mark.parametrize("timestamp", [None, "2025-01-01T00:00:00Z"])
def test_encode_stream_is_what_json_writes(data, timestamp):
    # stream frames take a faster path than the others: the same compact JSON
    obj = {"type": "stderr", "data": data} | ({"timestamp": timestamp} if timestamp else {})
    expected = json.dumps(obj, ensure_ascii=False, separators=(",", ":"))
    expected = SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", expected)
    assert encode(Stream("stderr", data), timestamp) == expected


@pytest.mark.parametrize("frame", [*EVERY_FRAME, Stream("stdout", "x" * 300_000), Stream("stderr", "\ud800")])
@pytest.mark.parametrize("timestamp", [None, "2025-01-01T00:00:00Z"])
def test_encode_utf8_is_encode_as_bytes(frame, timestamp):
    data, binary = encode_utf8(frame, timestamp)
    text = encode(frame, timestamp)
    assert binary is isinstance(text, bytes)
    assert data == (text if binary else text.encode("utf-8"))


def test_encode_leaves_out_unset_execute_fields():
    assert json.loads(encode(Execute("1"))) == {"type": "execute", "code": "1", "language": "python"}


def test_split_text_small_text_is_one_chunk():
    assert split_text("") == [""]
    assert split_text("abc") == ["abc"]


@pytest.mark.parametrize("char", ["a", "\x01", "\ud800", "😀", '"', "中"])
def test_split_text_worst_case_chunks_fit_a_frame(char):
    text = char * (3 * CHUNK_CHARS + 17)
    chunks = split_text(text)
    assert "".join(chunks) == text
    for chunk in chunks:
        assert (
            len(encode(Stream("stdout", chunk), timestamp="2025-01-01T00:00:00.000000Z").encode())
            < MAX_FRAME_BYTES
        )


def test_split_text_custom_limit_applies_to_text_that_is_not_ascii():
    assert split_text("中文字符串", limit=3) == ["中文字", "符串"]


def test_ascii_output_travels_in_few_large_frames():
    text = "0123456789abcdef\n" * (3 * 1024 * 1024 // 17)  # ~3 MiB of plain output
    chunks = split_text(text)
    assert "".join(chunks) == text
    assert len(chunks) <= 4  # 128 KiB pieces would need 24
    assert all(
        len(encode(Stream("stdout", c), "2025-01-01T00:00:00.000000Z").encode()) < MAX_FRAME_BYTES
        for c in chunks
    )


# ------------------------------------------------------------------ properties

#: any text, with lone surrogates and control characters (6-byte JSON escapes) likely.
#: Built from a list: st.text() would fold the alphabet's one_of and almost never pick them.
ANY_TEXT = st.lists(
    st.one_of(
        st.characters(),
        st.sampled_from(
            ["\x00", "\x01", "\x1f", "\x7f", "\ud800", "\udc80", "\udfff", '"', "\\", "\u2028", "😀"]
        ),
    ),
    max_size=40,
).map("".join)


@settings(max_examples=150, deadline=None)
@given(ANY_TEXT, st.integers(min_value=1, max_value=50))
def test_split_text_keeps_every_character(text, limit):
    chunks = split_text(text, limit)
    assert "".join(chunks) == text
    # non-ASCII chunks respect the limit; ASCII ones may be larger but always fit a frame
    assert all(
        len(c) <= limit or (c.isascii() and len(encode(Stream("stdout", c))) < MAX_FRAME_BYTES)
        for c in chunks
    )


@settings(max_examples=60, deadline=None)
@given(ANY_TEXT, st.integers(1, 40_000))
def test_split_text_chunks_encode_under_one_mebibyte(seed, repeat):
    text = seed * repeat  # up to several MiB of arbitrary text, control characters included
    chunks = split_text(text)
    assert "".join(chunks) == text
    for chunk in chunks:
        assert len(encode(Stream("stdout", chunk)).encode("utf-8")) < MAX_FRAME_BYTES


@settings(max_examples=200, deadline=None)
@given(st.one_of(ANY_TEXT, st.text(), st.binary()))
def test_parse_agent_frame_arbitrary_text_raises_only_frame_error(raw):
    try:
        parse_agent_frame(raw)
    except FrameError:
        pass


JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | ANY_TEXT,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)
AGENT_TYPES = ["stdout", "stderr", "result", "complete", "error", "display", "clear_output", "input_request"]
FIELDS = [
    "data", "exit_code", "execution_time", "metadata", "ename", "evalue", "traceback",
    "success", "error", "code", "transient", "wait", "prompt", "password", "message",
]  # fmt: skip


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        JSON,
        st.fixed_dictionaries(
            {"type": st.sampled_from(AGENT_TYPES)}, optional={name: JSON for name in FIELDS}
        ),
    )
)
def test_parse_agent_frame_arbitrary_json_raises_only_frame_error(value):
    try:
        frame = parse_agent_frame(json.dumps(value))
    except FrameError:
        return
    if isinstance(value, dict) and value.get("type") in AGENT_TYPES:
        assert frame is not None


@settings(max_examples=75, deadline=None)
@given(
    st.one_of(
        JSON,
        st.fixed_dictionaries(
            {"type": st.sampled_from(["execute", "input_reply", "interrupt"])},
            optional={
                name: JSON
                for name in ["code", "language", "timeout", "workdir", "working_dir", "env", "value"]
            },
        ),
    )
)
def test_parse_client_frame_arbitrary_json_raises_only_frame_error(value):
    # NaN, Infinity and huge integers included: json.dumps writes them, json.loads reads them
    try:
        frame = parse_client_frame(json.dumps(value))
    except FrameError:
        return
    encode(frame).encode("utf-8")  # whatever is accepted can be sent on


def test_result_payload_round_trips_and_is_validated():
    page = {"source": "page", "data": {"text/plain": "help"}, "start": 0}
    frame = Result(exit_code=0, payload=[page])
    assert parse_agent_frame(encode(frame)) == frame
    with pytest.raises(FrameError):
        parse_agent_frame('{"type": "result", "exit_code": 0, "payload": "page"}')


def test_complete_success_given_as_text_is_read_as_meant():
    assert parse_agent_frame('{"type": "complete", "success": "false"}') == Complete(False)
    assert parse_agent_frame('{"type": "complete", "success": "true"}') == Complete(True)
    assert parse_agent_frame('{"type": "complete"}') == Complete(True)


def test_extensions_is_asked_for_with_1_only():
    assert json.loads(encode(Execute("1", extensions=True)))["extensions"] == 1
    for value, want in (("1", False), (0, False), (None, False), (True, True), (1, True), ("yes", False)):
        raw = json.dumps({"type": "execute", "code": "1", "extensions": value})
        assert parse_client_frame(raw).extensions is want, value


def test_hopx_frames_turn_ext_frames_into_hopx_ones():
    tb = ["\x1b[31mTraceback (most recent call last):\x1b[0m", "ZeroDivisionError: division by zero"]
    full = Result(
        1,
        0.25,
        data={"text/plain": "1"},
        metadata={"m": 1},
        ename="ZeroDivisionError",
        evalue="division by zero",
        traceback=tb,
        payload=[{"source": "page"}],
    )
    assert hopx_frames(full) == [
        Stream("stderr", "Traceback (most recent call last):\nZeroDivisionError: division by zero\n"),
        Result(1, 0.25),
    ]
    assert hopx_frames(full, timed_out=True) == [Result(1, 0.25)]
    for passed in (Stream("stdout", "x"), AgentError("e", "EXECUTION_TIMEOUT"), Complete(False)):
        assert hopx_frames(passed) == [passed]
    for dropped in (Display({"text/html": "<b>"}), ClearOutput(True), InputRequest("?")):
        assert hopx_frames(dropped) == []
    huge = hopx_frames(Result(1, ename="E", evalue="", traceback=["x" * 3_000_000]))
    assert "".join(f.data for f in huge[:-1]) == "x" * 3_000_000 + "\n"
    assert all(len(encode(f).encode()) < MAX_FRAME_BYTES for f in huge)
