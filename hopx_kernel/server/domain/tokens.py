"""The server's secrets: the API key and sandboxes' bearer tokens, made and compared.
Pure but for the randomness.

Example:
    >>> a = new_token(); len(a) >= 40, tokens_equal(a, a), tokens_equal(None, a)
    (True, True, False)
"""

from __future__ import annotations

import hmac
import secrets


def new_token() -> str:
    """A fresh random token (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def tokens_equal(given: str | None, expected: str) -> bool:
    """Compare a presented token with the expected one in constant time."""
    if not given:
        return False
    return hmac.compare_digest(given.encode("utf-8"), expected.encode("utf-8"))
