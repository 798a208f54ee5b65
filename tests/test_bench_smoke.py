"""`python -m bench --smoke` still runs end to end and every result row has a number.

This is how `make test` keeps bench/ from rotting: a few samples of every row against
all four contenders (local ipykernel, HopX kernel embedded and in cloud mode, the raw
hopx-ai SDK stream), in a subprocess, then the leak check of conftest.py.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.timeout(320)
def test_bench_smoke_writes_a_number_in_every_row(tmp_path):
    out = tmp_path / "RESULTS.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPX_")}
    proc = subprocess.run(
        [sys.executable, "-m", "bench", "--smoke", "--out", str(out)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, f"bench --smoke failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    text = out.read_text()
    results = text.split("## Results", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in results.splitlines() if line.startswith("| ") and not line.startswith("| row |")]
    assert len(rows) >= 17, results
    for line in rows:
        cells = [c.strip() for c in line.strip("|").split("|")][2:]  # after row, unit
        assert any(re.search(r"\*\*-?\d", c) for c in cells), f"no number in row: {line}"
    assert not (tmp_path / "ratios.png").exists()  # smoke mode skips the chart
