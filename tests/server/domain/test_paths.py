"""Sandbox paths to host folders (hopx_kernel/server/domain/paths.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from hopx_kernel.server.domain.paths import host_root, locate, to_sandbox_path
from hopx_kernel.server.server_errors import PathNotAllowed, ServerError


def test_paths(tmp_path: Path):
    root = tmp_path / "sb"
    (root / "d").mkdir(parents=True)
    assert locate("/workspace") == locate(None) == ("/workspace", "")
    assert locate("/workspace/d/x.txt") == locate("d/x.txt") == ("/workspace", "d/x.txt")
    assert locate("/workspace/d/../y") == ("/workspace", "y")
    assert host_root(root, "/workspace") == root
    assert to_sandbox_path(root, root / "d" / "x") == "/workspace/d/x"
    assert to_sandbox_path(root, root) == "/workspace"
    # /tmp and the home folder are the sandbox's own folders beside /workspace's
    assert locate("/tmp/a/b") == ("/tmp", "a/b") and host_root(root, "/tmp") == tmp_path / "sb.tmp"
    assert locate("~/n") == locate("/root/n") == ("/root", "n")
    assert host_root(root, "/root") == tmp_path / "sb.home"
    assert to_sandbox_path(root, tmp_path / "sb.tmp" / "a") == "/tmp/a"
    assert to_sandbox_path(root, tmp_path / "sb.home") == "/root"
    for bad in (
        "/etc/passwd",
        "/workspace/../etc",
        "../x",
        "/workspacex/y",
        "/tmpx/y",
        "/tmp/../etc",
        "~/../etc",
        "/home/user",
    ):
        with pytest.raises(PathNotAllowed) as info:
            locate(bad)
        assert info.value.status == 403 and info.value.code == "PATH_NOT_ALLOWED"
    with pytest.raises(ServerError) as info:
        locate("a\0b")
    assert info.value.status == 400
