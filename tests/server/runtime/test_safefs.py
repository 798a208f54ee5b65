"""Race-free file operations (hopx_kernel/server/runtime/safefs.py): a symlink that leaves
the root is refused; and the Python 3.10 fallback of :func:`~.safefs.remove`
(``shutil.rmtree`` takes ``dir_fd`` only from 3.11): a folder goes through descriptors, a
symlink inside it is unlinked and its target stays. Run on every version, so the fallback
is tested where CI runs."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from hopx_kernel.server.runtime import safefs
from hopx_kernel.server.server_errors import ServerError


def test_rmtree_at_removes_a_folder_and_never_follows_its_symlinks(tmp_path):
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "keep").write_text("kept")
    root = tmp_path / "root"
    (root / "d" / "e").mkdir(parents=True)
    (root / "d" / "f").write_text("x")
    (root / "d" / "e" / "g").write_text("y")
    (root / "d" / "link").symlink_to(outside)  # a link to a folder
    (root / "d" / "e" / "flink").symlink_to(outside / "keep")  # a link to a file
    (root / "other").write_text("stays")
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY)
    try:
        safefs._rmtree_at(fd, "d")
    finally:
        os.close(fd)
    assert sorted(os.listdir(root)) == ["other"]
    assert sorted(os.listdir(outside)) == ["keep", "sub"] and (outside / "keep").read_text() == "kept"


def test_remove_takes_a_folder_with_a_symlink_in_it(tmp_path):
    (tmp_path / "target").mkdir()
    (tmp_path / "target" / "t").write_text("t")
    root = tmp_path / "ws"
    (root / "a" / "b").mkdir(parents=True)
    (root / "a" / "b" / "to_target").symlink_to(tmp_path / "target")
    safefs.remove(root, "a")
    assert os.listdir(root) == [] and os.listdir(tmp_path / "target") == ["t"]


def test_symlinks_leaving_a_root_are_refused(tmp_path: Path):
    root = tmp_path / "sb"
    (root / "d").mkdir(parents=True)
    # symlinks leaving a folder are refused when the directory is opened (safefs)
    (root / "link").symlink_to("/etc")
    with pytest.raises(ServerError) as info:
        safefs.open_dir(root, "link")
    assert info.value.status == 403 and info.value.code == "PATH_NOT_ALLOWED"
    (tmp_path / "sb.tmp").mkdir()
    (tmp_path / "sb.tmp" / "up").symlink_to(root)  # into /workspace: still out of /tmp
    with pytest.raises(ServerError) as info:
        safefs.open_dir(tmp_path / "sb.tmp", "up/d")
    assert info.value.status == 403
    with pytest.raises(ServerError) as info:
        safefs.open_dir(root, "nowhere")
    assert info.value.status == 404 and info.value.code == "DIRECTORY_NOT_FOUND"
