"""hopx_kernel.text: the text rules the kernel and the server share."""

from __future__ import annotations

import pytest

from hopx_kernel.text import SURROGATE, is_secret_name, strip_ansi


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
