"""Map sandbox paths (``/workspace/...``) to the sandbox's folder on this machine. Pure.

Example:
    >>> from pathlib import Path
    >>> to_host_path(Path("/tmp/sb"), "/workspace/a/b.txt")
    PosixPath('/tmp/sb/a/b.txt')
    >>> to_host_path(Path("/tmp/sb"), "rel.txt")
    PosixPath('/tmp/sb/rel.txt')
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from .errors import PathNotAllowed

WORKSPACE = "/workspace"


def to_host_path(root: Path, path: str | None) -> Path:
    """The host path for a sandbox path, refusing anything outside ``/workspace``.

    Relative paths are taken relative to ``/workspace``; ``..`` is resolved first, so
    ``/workspace/../etc`` is refused. Symlinks inside the folder that point outside
    are refused too.

    Raises:
        PathNotAllowed: the path escapes the sandbox's folder.
    """
    if path is None or path == "":
        path = WORKSPACE
    if "\0" in path:
        raise PathNotAllowed(path)
    absolute = posixpath.normpath(posixpath.join(WORKSPACE, path))
    if absolute != WORKSPACE and not absolute.startswith(WORKSPACE + "/"):
        raise PathNotAllowed(path)
    rel = absolute[len(WORKSPACE) :].lstrip("/")
    host = root / rel if rel else root
    real_root = root.resolve()
    real = host.resolve()
    if real != real_root and real_root not in real.parents:
        raise PathNotAllowed(path)
    return host


def to_sandbox_path(root: Path, host: Path) -> str:
    """The ``/workspace/...`` path shown to clients for a host path inside ``root``."""
    rel = host.relative_to(root).as_posix()
    return WORKSPACE if rel in ("", ".") else f"{WORKSPACE}/{rel}"
