"""A completer cache that every sandbox reads and none can write.

Each sandbox has a private home, so Jedi (the completer) would start cold in each one:
its first completion parses the standard library's stubs, about 2.3 s of CPU measured on
this machine, longer than JupyterLab waits for a first Tab. The server therefore keeps
one parsed cache per Python version in the user's cache folder, made once per machine by
a child process that writes a temporary folder and renames it into place (atomic: a
reader sees all of it or none). Sandboxes get it read-only (Landlock read rule) through
``ENV``; the sandbox kernel points Jedi at it. A sandbox can never write it, so one
sandbox cannot plant a pickle another loads. Until it exists (the first server on a
machine) sandboxes complete cold, as before.
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


def start_build(folder: Path | None = None) -> subprocess.Popen | None:
    """Begin making the cache in a child process (None: there is one already, or Jedi is
    missing). The caller reaps it with :func:`finish_build`."""
    folder = folder or cache_dir()
    if ready(folder) is not None:
        return None
    try:
        import jedi  # noqa: F401  (only to know whether the build can work)
    except ImportError:
        return None
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    return subprocess.Popen(
        [sys.executable, "-c", _BUILD, str(tmp)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
    )


def finish_build(proc: subprocess.Popen, folder: Path | None = None, *, kill: bool = False) -> None:
    """Reap the build; move its folder into place when it succeeded, else remove it."""
    folder = folder or cache_dir()
    tmp = folder.with_name(f"{folder.name}.tmp-{os.getpid()}")
    if kill and proc.poll() is None:
        proc.kill()
    ok = proc.wait() == 0 and not kill
    if ok and tmp.is_dir():
        try:
            os.rename(tmp, folder)  # atomic; fails if another server got there first
            return
        except OSError:
            pass
    shutil.rmtree(tmp, ignore_errors=True)
