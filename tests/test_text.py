"""hopx_kernel.text: the text rules the kernel and the server share."""

from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hopx_kernel.text import (
    PACK_CHARS,
    SURROGATE,
    is_secret_name,
    json_size,
    json_string,
    packed_content,
    strip_ansi,
)


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("\x1b[0;31mZeroDivisionError\x1b[0m: x", "ZeroDivisionError: x"),
        ("\x1b[1;32m\x1b[K ok", " ok"),
        ("\x1b[?25lhidden cursor\x1b[?25h", "hidden cursor"),
        ("\x1b]0;title\x07text", "text"),
        ("plain [1m text", "plain [1m text"),
    ],
)
def test_strip_ansi(raw, clean):
    assert strip_ansi(raw) == clean


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("HOPX_API_KEY", True),
        ("github_token", True),
        ("DB_PASSWD", True),
        ("AWS_SECRET_ACCESS_KEY", True),
        ("GOOGLE_APPLICATION_CREDENTIALS", True),
        ("HOPX_TEMPLATE", False),
        ("PATH", False),
    ],
)
def test_is_secret_name(name, secret):
    assert is_secret_name(name) is secret


def test_surrogate_finds_only_lone_surrogates():
    assert SURROGATE.findall("a\ud800b\udfffc😀") == ["\ud800", "\udfff"]


@pytest.mark.parametrize(
    "text",
    [
        "",
        "x" * 70000,
        "line 1\nline 2\n" * 1000,
        'say "hi" \\ back\tslash\r\n',
        "\x1b[31mred\x1b[0m é 中 😀\x00\x1f\x7f\u2028",
        "".join(map(chr, range(0x80))),  # every kind: json's own encoder takes it
        "a\tb\n" * 5000,  # dense with escapes: json's own encoder takes it
    ],
)
def test_json_string_writes_what_json_dumps_writes(text):
    expected = json.dumps(text, ensure_ascii=False).encode("utf-8")
    assert json_string(text) == expected
    assert json_size(text) == len(expected)


def test_json_string_escapes_lone_surrogates():
    assert json_string("a\ud800b") == b'"a\\ud800b"'
    assert json.loads(json_string("a\udfff" * 3)) == "a\udfff" * 3
    assert json_size("a\ud800b") == len(json_string("a\ud800b"))


@given(st.text())
def test_json_string_is_json_dumps_for_any_text(text):
    literal = json_string(text)
    assert json.loads(literal) == text
    if not SURROGATE.search(text):
        assert literal == json.dumps(text, ensure_ascii=False).encode("utf-8")
    assert json_size(text) == len(literal)


@pytest.mark.parametrize("text", ["x" * PACK_CHARS, ('a "q" \\ \x1b[1m é 😀\n' * 500)])
def test_packed_long_stream_text_is_the_content_as_json(text):
    content = {"name": "stderr", "text": text}
    body = packed_content("stream", content)
    assert isinstance(body, bytes)
    assert json.loads(body) == content


def test_packed_leaves_short_text_and_other_messages_to_the_packer():
    short = {"name": "stdout", "text": "x" * (PACK_CHARS - 1)}
    assert packed_content("stream", short) is short
    display = {"data": {"text/plain": "x" * 2 * PACK_CHARS}, "metadata": {}}
    assert packed_content("display_data", display) is display
