r"""Small pure text rules shared by the kernel and the local server, one home each.

Example:
    >>> strip_ansi("\x1b[0;31mZeroDivisionError\x1b[0m: x")
    'ZeroDivisionError: x'
    >>> bool(SURROGATE.search("a\ud800"))
    True
    >>> is_secret_name("db_password"), is_secret_name("HOPX_TEMPLATE")
    (True, False)
"""

from __future__ import annotations

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
