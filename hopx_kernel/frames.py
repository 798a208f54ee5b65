r"""WebSocket frames of ``/execute/stream`` (docs/protocol.md §2.1, §2.2): parse, validate, encode.

Pure: text in, frame objects out, no sockets or clocks. The local sandbox server and the
kernel both use this module, so the two ends cannot drift apart.

Agent → client frames are parsed leniently (a client must survive any agent): empty or
non-JSON text is a keepalive (``None``), unknown ``type`` values are skipped (``None``),
and only a *known* frame with wrongly typed fields raises :class:`FrameError`.
Client → agent frames are parsed strictly: anything off raises :class:`FrameError` with
a message fit to send back in an ``error`` frame.

Example:
    >>> parse_agent_frame('{"type": "stdout", "data": "hi\\n"}')
    Stream(name='stdout', data='hi\n')
    >>> encode(Complete(success=True))
    '{"type":"complete","success":true}'
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from typing import Any

from . import wire
from .errors import FrameError
from .text import SURROGATE, json_escaped, json_size, strip_ansi

#: The largest frame a client must accept: the ``websockets`` default ``max_size``.
MAX_FRAME_BYTES = 1 << 20
#: Stream text is cut into chunks of at most this many characters. JSON escapes a
#: character to at most 6 bytes, so a chunk always encodes well under MAX_FRAME_BYTES.
CHUNK_CHARS = 128 * 1024
#: ASCII stream text encodes one byte per character (bar escapes), so it travels in
#: pieces this large, each checked against MAX_FRAME_BYTES before it is used.
ASCII_CHUNK_CHARS = 960 * 1024
#: Room kept in a frame for everything but the text: type, timestamp, JSON punctuation.
FRAME_OVERHEAD = 256

LANGUAGES = ("python", "javascript", "bash", "go")
#: Language aliases the official SDK accepts (``hopx_ai.Language``), folded to LANGUAGES.
LANGUAGE_ALIASES = {
    "python3": "python",
    "node": "javascript",
    "nodejs": "javascript",
    "js": "javascript",
    "sh": "bash",
    "shell": "bash",
}


# ---------------------------------------------------------------- agent → client


@dataclass(frozen=True, slots=True)
class Stream:
    """A ``stdout`` or ``stderr`` chunk; not line-aligned."""

    name: str
    data: str


@dataclass(frozen=True, slots=True)
class Result:
    """The execution ended. ``data`` and the error fields are [ext]."""

    exit_code: int = 0
    execution_time: float = 0.0
    data: dict[str, Any] | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    ename: str | None = None
    evalue: str | None = None
    traceback: list[str] | None = None
    #: [ext] the execute reply's payloads (e.g. ``{"source": "page", ...}`` from ``obj?``)
    payload: list[dict[str, Any]] | None = None


@dataclass(frozen=True, slots=True)
class Complete:
    """Always the last frame."""

    success: bool


@dataclass(frozen=True, slots=True)
class AgentError:
    """An agent-side failure (bad request, timeout); ``complete`` still follows."""

    error: str
    code: str = "EXECUTION_FAILED"


@dataclass(frozen=True, slots=True)
class Display:
    """[ext] A rich display: Jupyter ``display_data``."""

    data: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)
    transient: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ExecuteResult:
    """[ext] The value of the cell's last expression (Jupyter ``execute_result``), sent in
    the sandbox kernel's own output order to a client that sent ``execution_count``."""

    data: dict[str, Any]
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ClearOutput:
    """[ext] Jupyter ``clear_output``."""

    wait: bool = False


@dataclass(frozen=True, slots=True)
class InputRequest:
    """[ext] The code called ``input()`` or ``getpass()``."""

    prompt: str = ""
    password: bool = False


@dataclass(frozen=True, slots=True)
class Jupyter:
    """[ext] Another Jupyter message the cell produced (``comm_open``, ``comm_msg``, ...),
    header unchanged; ``buffers`` travel as binary parts (:mod:`hopx_kernel.wire`)."""

    msg: dict[str, Any]
    buffers: tuple[bytes, ...] = ()


AgentFrame = (
    Stream | Result | Complete | AgentError | Display | ExecuteResult | ClearOutput | InputRequest | Jupyter
)


# ---------------------------------------------------------------- client → agent


@dataclass(frozen=True, slots=True)
class Execute:
    """The first frame a client sends.

    ``allow_stdin`` is [ext]: only a client that will answer ``input_request`` frames sets
    it; otherwise ``input()`` fails at once instead of waiting for an answer that never
    comes (docs/protocol-extensions.md).
    """

    code: str
    language: str = "python"
    timeout: float | None = None
    workdir: str | None = None
    env: dict[str, str] = field(default_factory=dict)
    allow_stdin: bool = False
    #: the client asked for [ext] frames and fields (``"extensions": 1``, docs/protocol.md
    #: §2.2); without it an agent sends exactly HopX's frames (:func:`hopx_frames`)
    extensions: bool = False
    #: [ext] run the cell under this Jupyter msg_id (the frontend's)
    msg_id: str | None = None
    #: [ext] start only after the kernel channel's messages up to this seq were delivered
    channel_seq: int | None = None
    #: [ext] the client's (notebook's) count for this cell: the sandbox numbers the cell
    #: with it (``In``, ``Out``, ``_N``, "Cell In[N]") and sends ``execute_result`` in order
    execution_count: int | None = None


@dataclass(frozen=True, slots=True)
class InputReply:
    """[ext] The answer to an ``input_request``."""

    value: str


@dataclass(frozen=True, slots=True)
class Interrupt:
    """[ext] Raise KeyboardInterrupt in the running code; state is kept."""


ClientFrame = Execute | InputReply | Interrupt


# ---------------------------------------------------------------- encoding


def hopx_frames(frame: AgentFrame, *, timed_out: bool = False) -> list[AgentFrame]:
    """What an agent sends for ``frame`` to a client that did not ask for extensions.

    Exactly HopX's frames (docs/protocol.md §2.1): stream, ``error`` and ``complete`` pass; a
    ``result`` loses its [ext] fields and its traceback goes to ``stderr`` as text first
    (as ``/execute`` puts it), except after a timeout, which the ``error`` frame already
    says; every other frame (display, clear_output, input_request, any later [ext] type)
    is dropped.

    Example:
        >>> [type(f).__name__ for f in hopx_frames(Result(1, ename="E", traceback=["E: x"]))]
        ['Stream', 'Result']
        >>> hopx_frames(Display({"text/plain": "1"}))
        []
    """
    if isinstance(frame, (Stream, Complete, AgentError)):
        return [frame]
    if not isinstance(frame, Result):
        return []
    out: list[AgentFrame] = []
    if frame.traceback and not timed_out:
        text = strip_ansi("\n".join(frame.traceback)) + "\n"
        out += [Stream("stderr", chunk) for chunk in split_text(text)]
    out.append(Result(exit_code=frame.exit_code, execution_time=frame.execution_time))
    return out


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode


def to_dict(frame: AgentFrame | ClientFrame) -> dict[str, Any]:
    """The JSON object for a frame, with only the fields the protocol sends."""
    if isinstance(frame, Stream):
        return {"type": frame.name, "data": frame.data}
    if isinstance(frame, Result):
        out: dict[str, Any] = {
            "type": "result",
            "exit_code": frame.exit_code,
            "execution_time": frame.execution_time,
        }
        if frame.data is not None:
            out["data"] = frame.data
            out["metadata"] = frame.metadata
        if frame.ename is not None:
            out["ename"] = frame.ename
            out["evalue"] = frame.evalue or ""
            out["traceback"] = frame.traceback or []
        if frame.payload:
            out["payload"] = frame.payload
        return out
    if isinstance(frame, Complete):
        return {"type": "complete", "success": frame.success}
    if isinstance(frame, AgentError):
        return {"type": "error", "error": frame.error, "code": frame.code}
    if isinstance(frame, Display):
        return {
            "type": "display",
            "data": frame.data,
            "metadata": frame.metadata,
            "transient": frame.transient,
        }
    if isinstance(frame, ExecuteResult):
        return {"type": "execute_result", "data": frame.data, "metadata": frame.metadata}
    if isinstance(frame, ClearOutput):
        return {"type": "clear_output", "wait": frame.wait}
    if isinstance(frame, InputRequest):
        return {"type": "input_request", "prompt": frame.prompt, "password": frame.password}
    if isinstance(frame, Jupyter):
        return {"type": "jupyter", "msg": frame.msg}
    if isinstance(frame, Execute):
        out = {"type": "execute", "code": frame.code, "language": frame.language}
        if frame.timeout is not None:
            out["timeout"] = frame.timeout
        if frame.workdir is not None:
            out["workdir"] = frame.workdir
        if frame.env:
            out["env"] = frame.env
        if frame.allow_stdin:
            out["allow_stdin"] = True
        if frame.extensions:
            out["extensions"] = 1
        if frame.msg_id is not None:
            out["msg_id"] = frame.msg_id
        if frame.channel_seq is not None:
            out["channel_seq"] = frame.channel_seq
        if frame.execution_count is not None:
            out["execution_count"] = frame.execution_count
        return out
    if isinstance(frame, InputReply):
        return {"type": "input_reply", "value": frame.value}
    if isinstance(frame, Interrupt):
        return {"type": "interrupt"}
    raise TypeError(f"not a frame: {frame!r}")


def encode(frame: AgentFrame | ClientFrame, timestamp: str | None = None) -> str | bytes:
    """Serialise a frame to compact JSON text; ``timestamp`` is added when given.

    A ``jupyter`` frame with buffers becomes one binary frame (:func:`wire.pack`).
    """
    if isinstance(frame, Jupyter):
        obj = {"type": "jupyter", "msg": frame.msg}
        return wire.pack(obj, frame.buffers) if frame.buffers else wire.dumps(obj)
    if isinstance(frame, Stream):  # nearly all the bytes: the faster path of encode_utf8
        return encode_utf8(frame, timestamp)[0].decode("utf-8")
    obj = to_dict(frame)
    if timestamp is not None:
        obj["timestamp"] = timestamp
    text = _dumps(obj)
    # lone surrogates can only be inside JSON strings, where an escape means the same; the
    # isascii() test (C speed) spares the regex scan for nearly all output
    if not text.isascii() and SURROGATE.search(text):
        text = SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return text


def encode_utf8(frame: AgentFrame | ClientFrame, timestamp: str | None = None) -> tuple[bytes, bool]:
    """:func:`encode` as the bytes to send, and whether they go as a binary frame.

    Stream frames carry nearly all the bytes of a cell: their text is escaped by
    :func:`~.text.json_escaped` and joined with one copy, never held as a ``str``.

    Example:
        >>> encode_utf8(Stream("stdout", "hi\\n"))
        (b'{"type":"stdout","data":"hi\\\\n"}', False)
    """
    if isinstance(frame, Stream):
        tail = b'"}' if timestamp is None else f'","timestamp":{_dumps(timestamp)}}}'.encode()
        head = (
            b'{"type":"stdout","data":"'
            if frame.name == "stdout"
            else f'{{"type":{_dumps(frame.name)},"data":"'.encode()
        )
        return b"".join((head, json_escaped(frame.data), tail)), False
    data = encode(frame, timestamp)
    return (data, True) if isinstance(data, bytes) else (data.encode("utf-8"), False)


def split_text(data: str, limit: int = CHUNK_CHARS) -> list[str]:
    """Cut stream text into chunks that each fit one frame, keeping every character.

    ASCII text (most output) is cut into large pieces, each checked to encode within
    ``MAX_FRAME_BYTES``; anything else into ``limit`` characters, safe for any text.
    """
    if len(data) <= limit:
        return [data]
    out: list[str] = []
    start, end = 0, len(data)
    while start < end:
        piece = data[start : start + ASCII_CHUNK_CHARS]
        if not (piece.isascii() and json_size(piece) <= MAX_FRAME_BYTES - FRAME_OVERHEAD):
            piece = piece[:limit]
        out.append(piece)
        start += len(piece)
    return out


# ---------------------------------------------------------------- decoding helpers


def _load(raw: str | bytes) -> Any:
    if isinstance(raw, (bytes, bytearray, memoryview)):
        raw = bytes(raw).decode("utf-8", errors="replace")
    return json.loads(raw)


def _get(obj: dict, key: str, kind: type | tuple, default: Any, frame: str) -> Any:
    value = obj.get(key, default)
    if value is default:
        return default
    if kind is float:
        kind = (int, float)
    if isinstance(value, bool) and kind in (int, (int, float)):
        raise FrameError(f"'{frame}' frame: field '{key}' must be a number, not a boolean")
    if not isinstance(value, kind):
        want = kind.__name__ if isinstance(kind, type) else "number"
        got = type(value).__name__
        raise FrameError(f"'{frame}' frame: field '{key}' must be {want}, got {got}")
    if kind == (int, float) and isinstance(value, (int, float)):  # (checked above; narrows for mypy)
        try:
            return float(value)
        except OverflowError as exc:  # an integer too big for a float
            raise FrameError(f"'{frame}' frame: field '{key}' is out of range") from exc
    return value


def _str_dict(value: Any, frame: str, key: str) -> dict:
    if not isinstance(value, dict):
        raise FrameError(f"'{frame}' frame: field '{key}' must be an object")
    return value


# ---------------------------------------------------------------- agent → client parsing


def _payload(value: Any, frame: str) -> list[dict[str, Any]] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(p, dict) for p in value):
        raise FrameError(f"'{frame}' frame: 'payload' must be a list of objects")
    return value or None


def parse_agent_frame(raw: str | bytes) -> AgentFrame | None:
    """Parse one frame from an agent.

    Returns ``None`` for keepalives (empty, whitespace or non-JSON text, JSON that is
    not an object) and for unknown ``type`` values, which a client skips.

    Raises:
        FrameError: a known frame type whose fields have the wrong types.
    """
    if not raw or (isinstance(raw, str) and raw.isspace()):
        return None
    buffers: list[bytes] = []
    try:
        if isinstance(raw, (bytes, bytearray, memoryview)) and wire.looks_packed(raw):
            obj, buffers = wire.unpack(raw)
        else:
            obj = _load(raw)
    except (ValueError, RecursionError):  # RecursionError: absurdly deep nesting
        return None
    if not isinstance(obj, dict):
        return None
    kind = obj.get("type")
    if kind == "jupyter":
        return Jupyter(wire.check_msg(obj.get("msg"), "'jupyter' frame"), tuple(buffers))
    if kind == "stdout" or kind == "stderr":
        data = obj.get("data", "")
        if not isinstance(data, str):
            raise FrameError(f"'{kind}' frame: field 'data' must be a string")
        return Stream(kind, data)
    if kind == "result":
        tb = _get(obj, "traceback", list, None, kind)
        if tb is not None and not all(isinstance(x, str) for x in tb):
            raise FrameError("'result' frame: 'traceback' must be a list of strings")
        data = obj.get("data")
        if data is not None:
            _str_dict(data, kind, "data")
        ename = _get(obj, "ename", str, None, kind)
        return Result(
            exit_code=_get(obj, "exit_code", int, 0, kind),
            execution_time=float(_get(obj, "execution_time", float, 0.0, kind)),
            data=data,
            metadata=_str_dict(obj.get("metadata") or {}, kind, "metadata"),
            ename=ename,
            evalue=_get(obj, "evalue", str, "", kind) if ename is not None else None,
            traceback=tb,
            payload=_payload(obj.get("payload"), kind),
        )
    if kind == "complete":
        success = obj.get("success", True)
        if isinstance(success, str):  # a lenient agent might send "false"
            success = success.strip().lower() in ("true", "1", "yes")
        return Complete(bool(success))
    if kind == "error":
        message = obj.get("error", obj.get("message", "the sandbox reported an error"))
        return AgentError(str(message), str(obj.get("code") or "EXECUTION_FAILED"))
    if kind == "display":
        return Display(
            data=_str_dict(obj.get("data"), kind, "data"),
            metadata=_str_dict(obj.get("metadata") or {}, kind, "metadata"),
            transient=_str_dict(obj.get("transient") or {}, kind, "transient"),
        )
    if kind == "execute_result":
        return ExecuteResult(
            data=_str_dict(obj.get("data"), kind, "data"),
            metadata=_str_dict(obj.get("metadata") or {}, kind, "metadata"),
        )
    if kind == "clear_output":
        return ClearOutput(bool(obj.get("wait", False)))
    if kind == "input_request":
        return InputRequest(
            prompt=_get(obj, "prompt", str, "", kind),
            password=bool(obj.get("password", False)),
        )
    return None


# ---------------------------------------------------------------- client → agent parsing


def parse_client_frame(raw: str | bytes) -> ClientFrame:
    """Parse one frame from a client, strictly.

    Raises:
        FrameError: with ``code`` ``INVALID_JSON`` for text that is not a JSON object,
            ``INVALID_REQUEST`` for unknown types or bad fields, ``MISSING_PARAMETER``
            for a missing required field.
    """
    if isinstance(raw, (bytes, bytearray, memoryview)) and len(raw) > MAX_FRAME_BYTES:
        raise FrameError("frame larger than 1 MiB", code="INVALID_REQUEST")
    try:
        obj = _load(raw)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:
        raise FrameError("frame is not valid JSON", code="INVALID_JSON") from exc
    if not isinstance(obj, dict):
        raise FrameError("frame must be a JSON object", code="INVALID_JSON")
    kind = obj.get("type")
    if kind == "execute":
        if obj.get("code") is None:
            raise FrameError("'execute' frame: field 'code' is required", "MISSING_PARAMETER")
        code = _get(obj, "code", str, None, kind)
        language = (_get(obj, "language", str, None, kind) or "python").lower()
        language = LANGUAGE_ALIASES.get(language, language)
        if language not in LANGUAGES:
            raise FrameError(
                f"'execute' frame: unsupported language '{language}' (use one of {', '.join(LANGUAGES)})"
            )
        timeout = obj.get("timeout")
        if timeout is not None:
            timeout = float(_get(obj, "timeout", float, None, kind))
            if not (timeout >= 0 and math.isfinite(timeout)):  # also NaN, Infinity
                raise FrameError("'execute' frame: field 'timeout' must be a finite number >= 0")
        env = obj.get("env") or {}
        _str_dict(env, kind, "env")
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in env.items()):
            raise FrameError("'execute' frame: 'env' must map strings to strings")
        bad = next((k for k in env if not k or "=" in k or "\0" in k), None)
        if bad is not None:
            raise FrameError(
                f"'execute' frame: invalid environment variable {bad!r} (empty, or "
                "holds '=' or a NUL character)"
            )
        workdir = _get(obj, "workdir", str, None, kind)
        if workdir is None and isinstance(obj.get("working_dir"), str):
            workdir = obj["working_dir"]
        msg_id = _get(obj, "msg_id", str, None, kind)
        channel_seq = obj.get("channel_seq")
        if channel_seq is not None and (
            isinstance(channel_seq, bool) or not isinstance(channel_seq, int) or channel_seq < 0
        ):
            raise FrameError("'execute' frame: field 'channel_seq' must be an integer >= 0")
        count = _get(obj, "execution_count", int, None, kind)
        if count is not None and count < 1:
            raise FrameError("'execute' frame: field 'execution_count' must be an integer >= 1")
        return Execute(
            code=code,
            language=language,
            timeout=timeout,
            workdir=workdir,
            env=env,
            allow_stdin=bool(obj.get("allow_stdin", False)),
            extensions=obj.get("extensions") in (1, True),
            msg_id=msg_id or None,
            channel_seq=channel_seq,
            execution_count=count,
        )
    if kind == "input_reply":
        value = obj.get("value")
        if not isinstance(value, str):
            raise FrameError("'input_reply' frame: field 'value' must be a string")
        return InputReply(value)
    if kind == "interrupt":
        return Interrupt()
    if kind is None:
        raise FrameError("frame has no 'type' field", code="MISSING_PARAMETER")
    raise FrameError(f"unknown frame type {kind!r}")
