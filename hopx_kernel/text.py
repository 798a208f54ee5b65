r"""Small pure text rules shared by the kernel and the local server, one home each.

Example:
    >>> strip_ansi("\x1b[0;31mZeroDivisionError\x1b[0m: x")
    'ZeroDivisionError: x'
    >>> bool(SURROGATE.search("a\ud800"))
    True
    >>> is_secret_name("db_password"), is_secret_name("HOPX_TEMPLATE")
    (True, False)
    >>> json_string('say "hi"\n')
    b'"say \\"hi\\"\\n"'
"""

from __future__ import annotations

import json
import re

#: ANSI escape sequences: CSI (colours, cursor moves, private modes such as ``\x1b[?25l``)
#: and OSC (window titles, hyperlinks) ended by BEL.
ANSI = re.compile(r"\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b\][^\x07]*\x07")
#: UTF-16 surrogate code points: a JSON escape like ``"\ud800"`` puts one, alone, in a str,
#: and such a str cannot be encoded as UTF-8.
SURROGATE = re.compile("[\ud800-\udfff]")
#: Parts of an environment variable's name that mark it as a secret (any case).
SECRET_MARKERS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")


def strip_ansi(text: str) -> str:
    """``text`` without ANSI colour and cursor escape sequences."""
    return ANSI.sub("", text)


def is_secret_name(name: str) -> bool:
    """Whether an environment variable's name looks like it holds a secret."""
    upper = name.upper()
    return any(marker in upper for marker in SECRET_MARKERS)


#: The bytes a JSON string holds as they are (UTF-8 multi-byte sequences are all >= 0x80).
_JSON_PLAIN = bytes(b for b in range(0x20, 0x100) if b not in b'"\\')
#: (byte, its JSON escape) for every byte that needs one, as ``json.dumps`` writes it; the
#: backslash comes first, so the escapes added after it are not escaped again.
_JSON_ESCAPES = [
    (bytes([b]), json.dumps(chr(b)).encode()[1:-1])
    for b in sorted(set(range(0x100)) - set(_JSON_PLAIN), key=lambda b: b != 0x5C)
]
#: Stream text from this many characters on is serialised by :func:`packed_content`.
PACK_CHARS = 4096
#: Past this many different bytes to escape, or one byte in this many to escape, json's
#: own encoder is faster (measured: 1.6x slower than it at one byte in 5, 1.6x faster at
#: one in 10, as in short printed lines).
_JSON_MAX_KINDS = 4
_JSON_DENSE = 8
#: How much of a text's start is looked at first to judge whether it is dense.
_JSON_SAMPLE = 4096
_dumps_str = json.JSONEncoder(ensure_ascii=False).encode


def json_string(text: str) -> bytes:
    """``text`` as a JSON string literal in UTF-8: ``json.dumps(text, ensure_ascii=False)``,
    byte for byte, except that lone surrogates become ``\\udXXX`` escapes (same meaning).

    Output flows through three JSON encodes (sandbox, server, kernel), and the json
    module's ensure_ascii=False encoder copies one character at a time (~200 MB/s
    here). Text needs escaping only for ``"``, ``\\`` and control characters, nearly
    always a few kinds (newlines, tabs, ANSI's ESC, ``\\r``): one C pass finds which, and
    one ``bytes.replace`` (C, memchr-fast) per kind escapes them: ~5x faster than json on
    text with nothing to escape, ~1.6-2.7x on printed lines and progress bars. Text
    dense with escapes, or with many kinds, goes to json's encoder, which is faster there.

    Example:
        >>> json_string("a\\tb\\u00e9") == json.dumps("a\\tb\\u00e9", ensure_ascii=False).encode()
        True
        >>> json_string("x\\ud800")
        b'"x\\\\ud800"'
    """
    return b"".join((b'"', json_escaped(text), b'"'))


def json_escaped(text: str) -> bytes | memoryview:
    """:func:`json_string` without its quotes, to be joined into a larger JSON text with
    one copy (each ``+`` of bytes copies everything so far)."""
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates: valid in a JSON escape only
        escaped = SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", _dumps_str(text))
        return memoryview(escaped.encode("utf-8"))[1:-1]
    # text dense with escapes (judged by its start, then by all of it) is json's to encode
    start = raw[:_JSON_SAMPLE]
    if len(start.translate(None, _JSON_PLAIN)) * _JSON_DENSE > len(start):
        return memoryview(_dumps_str(text).encode("utf-8"))[1:-1]
    special = raw.translate(None, _JSON_PLAIN)
    if special:
        kinds = [pair for pair in _JSON_ESCAPES if pair[0] in special]
        if len(kinds) > _JSON_MAX_KINDS or len(special) * _JSON_DENSE > len(raw):
            return memoryview(_dumps_str(text).encode("utf-8"))[1:-1]
        for byte, escape in kinds:
            raw = raw.replace(byte, escape)
    return raw


def json_size(text: str) -> int:
    """``len(json_string(text))``, without building it.

    Example:
        >>> json_size('a"\\n'), len(json.dumps('a"\\n'))
        (7, 7)
    """
    try:
        raw = text.encode("utf-8")
    except UnicodeEncodeError:
        return len(json_string(text))
    special = raw.translate(None, _JSON_PLAIN)
    extra = sum(special.count(byte) * (len(escape) - 1) for byte, escape in _JSON_ESCAPES if byte in special)
    return len(raw) + 2 + extra


def packed_content(msg_type: str, content: dict) -> dict | bytes:
    """A message's ``content`` serialised here when that is much faster than by jupyter_client.

    jupyter_client's ``Session`` sends content given as bytes as it is. Its JSON packer
    copies a string one character at a time (~200 MB/s): for long stream text that was
    the largest cost of the kernel's main thread (28 % in the 50 MiB row), and a large
    one of the sandbox's kernel. :func:`json_string` writes the same JSON several times
    faster. Other content, and short text, is left to the packer. The kernel makes
    content :func:`~.mapping.jupyter_safe` first; here a lone surrogate would travel as
    a ``\\udXXX`` escape.

    Example:
        >>> packed_content("stream", {"name": "stdout", "text": "x" * 5000})[:30]
        b'{"name":"stdout","text":"xxxxx'
        >>> packed_content("stream", {"name": "stdout", "text": "hi"})
        {'name': 'stdout', 'text': 'hi'}
    """
    if msg_type == "stream" and content.keys() == {"name", "text"} and len(content["text"]) >= PACK_CHARS:
        name = json_string(content["name"])
        return b"".join((b'{"name":', name, b',"text":"', json_escaped(content["text"]), b'"}'))
    return content
