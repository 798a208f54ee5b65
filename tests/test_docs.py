"""The repository documents itself: no pointer outside it, and every relative link in the
README and docs/ names a file that exists."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUTSIDE = re.compile(r"\.\./shared|PROTOCOL\.md|/work/shared|notes §")
LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _tracked(*suffixes: str) -> list[Path]:
    out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / n for n in out.split() if n.endswith(suffixes) and (ROOT / n).is_file()]


def test_nothing_points_outside_the_repository():
    hits = [
        f"{path.relative_to(ROOT)}:{number}: {line.strip()}"
        for path in _tracked(".py", ".md", ".toml", ".json", ".ipynb", "Makefile")
        if path.name != "test_docs.py"
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert hits == []


def test_relative_links_in_the_docs_resolve():
    broken = [
        f"{path.relative_to(ROOT)}: {target}"
        for path in _tracked(".md")
        for target in LINK.findall(path.read_text(encoding="utf-8"))
        if "://" not in target and not (path.parent / target).exists()
    ]
    assert broken == []
