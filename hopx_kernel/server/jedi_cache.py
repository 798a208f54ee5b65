"""A completer cache that every sandbox reads and none can write.

Each sandbox has a private home, so Jedi (the completer) would start cold in each one:
its first completion parses the standard library's stubs, about 2.3 s of CPU measured on
this machine, longer than JupyterLab waits for a first Tab. The server therefore keeps
one parsed cache per Python version in the user's cache folder, made once per machine
(the first server's start takes ~2 s longer) by a child process that writes a
temporary folder and renames it into place (atomic: a reader sees all of it or none).
Sandboxes get it read-only (a Landlock read rule) through ``ENV``, and the sandbox kernel
points Jedi at it. No sandbox can write it, so none can plant a pickle another loads.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

#: The variable that hands a sandbox kernel the cache folder.
ENV = "HOPX_JEDI_CACHE"

_BUILD = (
    "import sys, jedi\n"
    "jedi.settings.cache_directory = sys.argv[1]\n"
    "jedi.Interpreter('import os; os.pa', [{}]).complete()\n"
)


def cache_dir() -> Path:
    """Where the cache for this Python lives (per user, per Python version)."""
    version = f"{sys.version_info[0]}{sys.version_info[1]}"
    return Path.home() / ".cache" / "hopx-kernel" / f"jedi-py{version}"


def ready(folder: Path | None = None) -> Path | None:
    """The cache folder if it is complete, else None."""
    folder = folder or cache_dir()
    return folder if folder.is_dir() else None


def ensure(folder: Path | None = None, timeout: float = 120.0) -> Path | None:
    """The cache folder, made first if this machine has none (a child process writes a
    temporary folder, then renames it into place). None if it cannot be made (no Jedi, a
    failure, or over ``timeout``): sandboxes then complete cold."""
    folder = folder or cache_dir()
    if ready(folder) is not None:
        return folder
    try:
        import jedi  # noqa: F401  (only to know whether the build can work)
    except ImportError:
        return None
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)  # an unwritable home: no cache
        subprocess.run(
            [sys.executable, "-c", _BUILD, str(tmp)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=True,
        )
        os.rename(tmp, folder)  # atomic; fails if another server got there first
    except (OSError, subprocess.SubprocessError):
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ready(folder)
