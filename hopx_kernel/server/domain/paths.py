"""Map sandbox paths to the sandbox's folders on this machine. Pure (no file is touched:
:mod:`..runtime.safefs` resolves the result race-free).

A sandbox sees three places, each a private folder of its own on this machine:

=============  =====================================  ==============================
sandbox path   host folder                            note
=============  =====================================  ==============================
``/workspace``  ``<root>/<id>``  (the sandbox folder)  the default; relative paths
``/tmp``        ``<root>/<id>.tmp``                    as in a HopX sandbox
``/root``, ``~``  ``<root>/<id>.home``                 the home folder
=============  =====================================  ==============================

Example:
    >>> from pathlib import Path
    >>> locate("/workspace/a/b.txt"), locate("rel.txt"), locate("/tmp/x"), locate("~/notes")
    (('/workspace', 'a/b.txt'), ('/workspace', 'rel.txt'), ('/tmp', 'x'), ('/root', 'notes'))
    >>> host_root(Path("/srv/sb"), "/tmp")
    PosixPath('/srv/sb.tmp')
    >>> to_sandbox_path(Path("/srv/sb"), Path("/srv/sb.tmp/x"))
    '/tmp/x'
"""

from __future__ import annotations

import posixpath
from pathlib import Path

from ..server_errors import PathNotAllowed, ServerError

WORKSPACE = "/workspace"
HOME = "/root"
#: sandbox folder -> suffix of its host folder beside the sandbox folder ("" = the folder)
VIRTUAL_ROOTS = {WORKSPACE: "", "/tmp": ".tmp", HOME: ".home"}


def host_root(folder: Path, virtual: str) -> Path:
    """The host folder of one of :data:`VIRTUAL_ROOTS` for the sandbox folder ``folder``."""
    suffix = VIRTUAL_ROOTS[virtual]
    return folder.with_name(folder.name + suffix) if suffix else folder


def private_folders(folder: Path) -> list[Path]:
    """Every host folder of a sandbox (to create on demand and remove at its end)."""
    return [host_root(folder, v) for v in VIRTUAL_ROOTS]


#: Longest path accepted (PATH_MAX), longest name in it (NAME_MAX), deepest nesting.
MAX_PATH_BYTES = 4096
MAX_NAME_BYTES = 255
MAX_DEPTH = 128


def locate(path: object) -> tuple[str, str]:
    """The sandbox folder (one of :data:`VIRTUAL_ROOTS`) a sandbox path is in, and the
    path relative to it (``""`` for the folder itself).

    Pure: it checks the text only; :mod:`..runtime.safefs` resolves the result race-free under
    :func:`host_root`.

    Raises:
        ServerError: 400 for a path that is not a usable string; 403 ``PATH_NOT_ALLOWED``
            for one outside the sandbox's folders.

    Example:
        >>> locate("/workspace/a/../b.txt"), locate("c"), locate(None), locate("~/n")
        (('/workspace', 'b.txt'), ('/workspace', 'c'), ('/workspace', ''), ('/root', 'n'))
    """
    if path is None or path == "":
        return WORKSPACE, ""
    if not isinstance(path, str):
        raise ServerError(400, "INVALID_PATH", "'path' must be a string")
    if "\0" in path:
        raise ServerError(400, "INVALID_PATH", "'path' cannot hold a NUL character")
    try:
        encoded = len(path.encode("utf-8"))
    except UnicodeEncodeError:
        raise ServerError(400, "INVALID_PATH", "'path' is not valid Unicode text") from None
    if encoded > MAX_PATH_BYTES:
        raise ServerError(
            400, "INVALID_PATH", f"'path' is {encoded} bytes, over the {MAX_PATH_BYTES}-byte limit"
        )
    if path == "~" or path.startswith("~/"):
        path = HOME + path[1:]
    absolute = posixpath.normpath(posixpath.join(WORKSPACE, path))
    for virtual in VIRTUAL_ROOTS:
        if absolute == virtual or absolute.startswith(virtual + "/"):
            break
    else:
        raise PathNotAllowed(path)
    rel = absolute[len(virtual) :].lstrip("/")
    parts = rel.split("/") if rel else []
    if len(parts) > MAX_DEPTH:
        raise ServerError(
            400, "INVALID_PATH", f"'path' is nested {len(parts)} levels deep, over the limit of {MAX_DEPTH}"
        )
    if any(len(p.encode("utf-8")) > MAX_NAME_BYTES for p in parts):
        raise ServerError(400, "INVALID_PATH", f"a name in 'path' is over {MAX_NAME_BYTES} bytes")
    return virtual, rel


def to_sandbox_path(root: Path, host: Path) -> str:
    """The sandbox path shown to clients for a host path inside one of the sandbox's folders."""
    for virtual in VIRTUAL_ROOTS:
        base = host_root(root, virtual)
        if host == base or base in host.parents:
            rel = host.relative_to(base).as_posix()
            return virtual if rel in ("", ".") else f"{virtual}/{rel}"
    raise ValueError(f"{host} is not in a folder of the sandbox at {root}")
