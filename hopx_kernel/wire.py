"""Jupyter messages on WebSockets (docs/protocol.md §2.2 ``jupyter`` frames, §2.4 the channel).

Pure: bytes and dicts in, dicts and bytes out; no sockets or clocks. Both the kernel and
the local sandbox server use it.

A message travels as JSON text, or, when it carries binary buffers, as one binary frame
laid out as jupyter_server lays out binary kernel messages: a big-endian u32 count N of
parts, N u32 offsets, then part 0 (the JSON text) and parts 1..N-1 (the buffers).

Example:
    >>> raw = pack({"a": 1}, [b"xy"])
    >>> unpack(raw)
    ({'a': 1}, [b'xy'])
    >>> parse_channel_frame('{"channel": "shell", "seq": 2, "msg": ' + json.dumps(MSG) + '}').seq
    2
"""

from __future__ import annotations

import json
import struct
from collections import deque
from dataclasses import dataclass, field
from datetime import date, datetime
from itertools import pairwise
from typing import Any

from .errors import FrameError

#: A channel frame larger than this is refused (a message's JSON plus its buffers).
MAX_CHANNEL_FRAME = 16 * 1024 * 1024
#: At most this many buffers in one message.
MAX_PARTS = 64
#: Message types a client may send on the channel, by Jupyter channel.
CLIENT_MSG_TYPES = {
    "shell": frozenset({"comm_open", "comm_msg", "comm_close", "comm_info_request"}),
    "control": frozenset({"debug_request"}),
}
#: Jupyter channels an agent may send on.
AGENT_CHANNELS = frozenset({"shell", "control", "iopub"})
#: Close code the agent uses when the sandbox's kernel was replaced: every comm is gone.
KERNEL_REPLACED = 4410

#: A minimal valid message, for examples and tests.
MSG = {
    "header": {
        "msg_id": "m1",
        "msg_type": "comm_msg",
        "session": "s",
        "username": "u",
        "date": "2026-01-01T00:00:00Z",
        "version": "5.3",
    },
    "parent_header": {},
    "metadata": {},
    "content": {"comm_id": "c1", "data": {}},
}


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray, memoryview)):
        return None  # buffers travel as parts, never inside the JSON
    raise TypeError(f"cannot send {type(value).__name__} in a Jupyter message")


_dumps = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_default).encode


_dumps_ascii = json.JSONEncoder(separators=(",", ":"), default=_default).encode


def dumps(obj: dict) -> str:
    """Compact JSON of a frame; dates (jupyter_client parses header dates) as ISO text.

    A lone surrogate (a frontend's JSON may escape one, and Python reads it as a character)
    cannot be written as UTF-8: such a frame is written with escapes instead, which reads
    back the same.

    Example:
        >>> print(dumps({"k": chr(0xD800) + "é"}))
        {"k":"\\ud800\\u00e9"}
        >>> json.loads(dumps({"k": chr(0xD800)}))["k"] == chr(0xD800)
        True
    """
    text = _dumps(obj)
    if not text.isascii():
        try:
            text.encode("utf-8")
        except UnicodeEncodeError:
            return _dumps_ascii(obj)
    return text


def dumps_utf8(obj: dict) -> bytes:
    """:func:`dumps` as UTF-8 bytes, encoded once.

    Example:
        >>> dumps_utf8({"k": "é"}) == dumps({"k": "é"}).encode("utf-8")
        True
    """
    text = _dumps(obj)
    try:
        return text.encode("utf-8")
    except UnicodeEncodeError:  # a lone surrogate: escapes, as dumps writes it
        return _dumps_ascii(obj).encode("ascii")


def pack(obj: dict, buffers: list[bytes] | tuple = ()) -> bytes:
    """One binary frame: the JSON of ``obj`` then each buffer."""
    parts = [dumps_utf8(obj)] + [bytes(b) for b in buffers]
    n = len(parts)
    offsets, at = [], 4 * (n + 1)
    for part in parts:
        offsets.append(at)
        at += len(part)
    return struct.pack(f">{n + 1}I", n, *offsets) + b"".join(parts)


def unpack(raw: bytes) -> tuple[Any, list[bytes]]:
    """``(json object, buffers)`` from a binary frame.

    Raises:
        FrameError: the bytes do not follow the layout, or part 0 is not JSON.
    """
    raw = bytes(raw)
    if len(raw) < 8:
        raise FrameError("binary frame too short for the buffer layout")
    (n,) = struct.unpack_from(">I", raw)
    if not 1 <= n <= MAX_PARTS + 1 or len(raw) < 4 * (n + 1):
        raise FrameError(f"binary frame: bad part count {n}")
    offsets = list(struct.unpack_from(f">{n}I", raw, 4)) + [len(raw)]
    if offsets[0] != 4 * (n + 1) or any(b < a for a, b in pairwise(offsets)):
        raise FrameError("binary frame: offsets out of order or out of range")
    parts = [raw[a:b] for a, b in pairwise(offsets)]
    try:
        obj = json.loads(parts[0].decode("utf-8"))
    except (ValueError, RecursionError):
        raise FrameError("binary frame: part 0 is not JSON", "INVALID_JSON") from None
    return obj, parts[1:]


def looks_packed(raw: bytes) -> bool:
    """Whether binary ``raw`` follows the buffer layout (JSON text sent as binary does not)."""
    try:
        unpack(raw)
    except FrameError:
        return False
    return True


def check_msg(msg: Any, where: str) -> dict:
    """``msg`` if it has the shape of a Jupyter message, else :class:`FrameError`.

    The header must name ``msg_id`` and ``msg_type`` as strings; ``parent_header``,
    ``metadata`` and ``content`` must be objects (missing ones become ``{}``).
    """
    if not isinstance(msg, dict):
        raise FrameError(f"{where}: 'msg' must be an object")
    header = msg.get("header")
    if not isinstance(header, dict):
        raise FrameError(f"{where}: 'msg.header' must be an object")
    for key in ("msg_id", "msg_type"):
        if not isinstance(header.get(key), str) or not header.get(key):
            raise FrameError(f"{where}: 'msg.header.{key}' must be a non-empty string")
    out = {"header": header}
    for key in ("parent_header", "metadata", "content"):
        value = msg.get(key)
        value = {} if value is None else value
        if not isinstance(value, dict):
            raise FrameError(f"{where}: 'msg.{key}' must be an object")
        out[key] = value
    out["msg_type"] = header["msg_type"]
    return out


def msg_type(msg: dict) -> str:
    return msg["header"]["msg_type"]


@dataclass(frozen=True)
class ChannelFrame:
    """One message on ``/kernel/channel``: which Jupyter channel, the message, its buffers.

    ``seq`` numbers client → agent frames 1, 2, ... (None from the agent)."""

    channel: str
    msg: dict
    buffers: list[bytes] = field(default_factory=list)
    seq: int | None = None


def encode_channel_frame(frame: ChannelFrame) -> str | bytes:
    """Text when there are no buffers, else the binary layout."""
    obj: dict[str, Any] = {"channel": frame.channel, "msg": frame.msg}
    if frame.seq is not None:
        obj["seq"] = frame.seq
    return pack(obj, frame.buffers) if frame.buffers else dumps(obj)


def _load(raw: str | bytes) -> tuple[Any, list[bytes]]:
    if isinstance(raw, str):
        try:
            return json.loads(raw), []
        except (ValueError, RecursionError):
            raise FrameError("channel frame is not valid JSON", "INVALID_JSON") from None
    return unpack(raw)


def parse_channel_frame(raw: str | bytes, *, from_client: bool = True) -> ChannelFrame:
    """Parse a channel frame strictly.

    From a client, only the message types of docs/protocol.md §2.4 on their channel are
    accepted, and ``seq``, when present, must be a positive integer.

    Raises:
        FrameError: anything off, with a message fit to send back.
    """
    size = len(raw) if isinstance(raw, (bytes, bytearray)) else len(raw.encode("utf-8", "replace"))
    if size > MAX_CHANNEL_FRAME:
        raise FrameError(
            f"channel frame of {size} bytes is larger than the {MAX_CHANNEL_FRAME >> 20} MiB limit"
        )
    obj, buffers = _load(raw)
    if not isinstance(obj, dict):
        raise FrameError("channel frame must be a JSON object", "INVALID_JSON")
    channel = obj.get("channel")
    allowed = CLIENT_MSG_TYPES if from_client else dict.fromkeys(AGENT_CHANNELS)
    if not isinstance(channel, str) or channel not in allowed:  # (a list would not even hash)
        raise FrameError(f"channel frame: unknown channel {channel!r}")
    msg = check_msg(obj.get("msg"), "channel frame")
    if from_client and msg_type(msg) not in CLIENT_MSG_TYPES[channel]:
        raise FrameError(f"channel frame: {msg_type(msg)!r} is not accepted on {channel}")
    seq = obj.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, int) or seq < 1):
        raise FrameError("channel frame: 'seq' must be a positive integer")
    return ChannelFrame(channel, msg, buffers, seq)


def channel_refusal(raw: str | bytes) -> tuple[str, str] | None:
    """``(code, error)`` when ``raw`` is the agent's ``{"type": "error"}`` frame (a client
    frame it refused or dropped, docs/protocol.md §2.4), else None.

    Example:
        >>> channel_refusal('{"type": "error", "error": "too many", "code": "CHANNEL_FULL"}')
        ('CHANNEL_FULL', 'too many')
        >>> channel_refusal('{"channel": "iopub"}') is None
        True
    """
    if not isinstance(raw, str):
        return None
    try:
        obj = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    if not isinstance(obj, dict) or obj.get("type") != "error":
        return None
    return str(obj.get("code") or "ERROR"), str(obj.get("error") or "")


class SeqTracker:
    """The agent's view of a client's ``seq`` numbers on one channel connection.

    ``forwarded`` is the highest seq handed to the sandbox's kernel; an execution with
    ``channel_seq`` n may start once ``forwarded >= n``. Out-of-order or repeated numbers
    are counted (``out_of_order``) and never move ``forwarded`` back.

    Example:
        >>> t = SeqTracker(); t.note(1); t.note(3); t.note(2)
        True
        False
        False
        >>> t.forwarded, t.out_of_order
        (3, 1)
    """

    def __init__(self) -> None:
        self.forwarded = 0
        self.out_of_order = 0

    def note(self, seq: int | None) -> bool:
        """Record a forwarded frame; False when its seq is not the next one expected."""
        if seq is None:
            return True
        if seq <= self.forwarded:
            self.out_of_order += 1
            return False
        in_order = seq == self.forwarded + 1  # a gap: frames were refused; still move on
        self.forwarded = seq
        return in_order

    def reached(self, channel_seq: int | None) -> bool:
        return channel_seq is None or self.forwarded >= channel_seq


class RecentIds:
    """The last ``size`` message ids seen, to refuse a replay: jupyter_client rejects a
    message whose signature it has seen ("Duplicate Signature"), and a sandbox message
    republished twice with its header kept is signed the same twice.

    Example:
        >>> seen = RecentIds(size=2)
        >>> [seen.first("a"), seen.first("a"), seen.first("b"), seen.first("c"), seen.first("a")]
        [True, False, True, True, True]
    """

    def __init__(self, size: int = 4096) -> None:
        self._order: deque[str] = deque()
        self._ids: set[str] = set()
        self._size = size

    def first(self, msg_id: str) -> bool:
        """True the first time ``msg_id`` is seen (among the last ``size``)."""
        if msg_id in self._ids:
            return False
        self._ids.add(msg_id)
        self._order.append(msg_id)
        if len(self._order) > self._size:
            self._ids.discard(self._order.popleft())
        return True


class CommTracker:
    """The comm ids a frontend knows, to close them all when the sandbox is replaced.

    Example:
        >>> c = CommTracker(); c.see("comm_open", {"comm_id": "a"}); c.see("comm_open", {"comm_id": "b"})
        >>> c.see("comm_close", {"comm_id": "a"}); sorted(c.ids)
        ['b']
    """

    #: Never track more than this many (a runaway producer must not grow memory).
    LIMIT = 100_000

    def __init__(self) -> None:
        self.ids: dict[str, None] = {}

    def see(self, kind: str, content: dict) -> None:
        comm_id = content.get("comm_id")
        if not isinstance(comm_id, str):
            return
        if kind == "comm_open" and len(self.ids) < self.LIMIT:
            self.ids[comm_id] = None
        elif kind == "comm_close":
            self.ids.pop(comm_id, None)

    def take_all(self) -> list[str]:
        ids, self.ids = list(self.ids), {}
        return ids


WIDGET_VIEW_MIME = "application/vnd.jupyter.widget-view+json"


def shows_widget(data: dict) -> bool:
    """Whether a display's data is a widget view (which needs the widget's comm)."""
    return isinstance(data, dict) and WIDGET_VIEW_MIME in data
