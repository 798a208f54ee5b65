"""The server's secrets (hopx_kernel/server/domain/tokens.py)."""

from __future__ import annotations

from hopx_kernel.server.domain.tokens import new_token, tokens_equal


def test_tokens():
    a, b = new_token(), new_token()
    assert a != b and len(a) >= 40
    assert tokens_equal(a, a) and not tokens_equal(a, b)
    assert not tokens_equal(None, a) and not tokens_equal("", a)
