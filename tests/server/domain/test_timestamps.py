"""Timestamps in the planes' format (hopx_kernel/server/domain/timestamps.py)."""

from __future__ import annotations

from hopx_kernel.server.domain.timestamps import now_rfc3339, rfc3339


def test_timestamps():
    ts = rfc3339(1.5)
    assert ts == "1970-01-01T00:00:01.500000Z"
    assert len(ts.split(".")[1]) == 7  # 6 digits + Z


def test_now_has_the_same_shape():
    ts = now_rfc3339()
    assert ts.endswith("Z") and ts[4] == "-" and ts[10] == "T" and len(ts.split(".")[1]) == 7
