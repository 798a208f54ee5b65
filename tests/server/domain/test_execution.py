"""The pure parts of one execution: env bookkeeping code (hopx_kernel/server/domain/execution.py)."""

from __future__ import annotations

from pathlib import Path

from hopx_kernel.server.domain.execution import env_changes, postlude_code, prelude_code


def test_env_changes():
    assert env_changes({"A": "1", "B": "2"}, {"A": "1", "C": "3"}) == ({"B": "2"}, ["C"])
    assert env_changes({}, {}) == ({}, [])


def test_prelude_and_postlude_restore(tmp_path: Path, monkeypatch):
    import os

    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("KEEP", "old")
    monkeypatch.setenv("GONE", "x")
    ns: dict = {}
    exec(prelude_code({"GLOBAL": "g"}, ["GONE"], {"KEEP": "new", "TEMP": "t"}, "/"), ns)
    assert os.getcwd() == "/" and os.environ["KEEP"] == "new" and os.environ["TEMP"] == "t"
    assert "GONE" not in os.environ
    exec(postlude_code(), ns)
    assert [k for k in ns if not k.startswith("__")] == []
    assert os.getcwd() == str(tmp_path) and os.environ["KEEP"] == "old"
    assert "TEMP" not in os.environ and os.environ["GLOBAL"] == "g"
    monkeypatch.delenv("GLOBAL")
