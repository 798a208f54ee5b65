"""A completer cache that every sandbox reads and none can write.

Each sandbox has a private home, so Jedi (the completer) would start cold in each one:
a first Tab at a kernel's top level infers every name IPython puts there (``get_ipython``,
``exit``, ``In``, ...), which parses the stubs and IPython's and ipykernel's sources:
2-3 s of CPU measured on this machine, past JupyterLab's 1 s wait for a completer
(``providerTimeout``), which then shows nothing. The server therefore keeps one parsed
cache in the user's cache folder, made once per machine (the first server's start takes
~5 s longer) by a child process that completes, as a sandbox kernel would, in a real
ipykernel shell; it writes a temporary folder and renames it into place (atomic: a reader
sees all of it or none). Jedi keys its cache by each file's path, so a cache serves one
Python environment only: the folder's name carries the Python version and a digest of the
environment's path, the recipe and Jedi's, IPython's and ipykernel's versions (another
checkout or an upgrade makes a new one), and a new one prunes those whose environment is
gone.
Sandboxes get it read-only (a Landlock read rule) through ``ENV``, and the sandbox kernel
points Jedi at it. No sandbox can write it, so none can plant a pickle another loads.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from importlib import metadata
from pathlib import Path

#: The variable that hands a sandbox kernel the cache folder.
ENV = "HOPX_JEDI_CACHE"

#: What a sandbox kernel's first completions parse: the top level of an ipykernel shell
#: (the names IPython puts there), an attribute and a module import.
WARM_CODES = ("pri", "import os; os.pa", "x = 1; x.", "import o")

_BUILD = (
    "import sys, jedi\n"
    "jedi.settings.cache_directory = sys.argv[1]\n"
    "from IPython.core.completer import provisionalcompleter\n"
    "from ipykernel.inprocess.manager import InProcessKernelManager\n"
    "km = InProcessKernelManager()\n"
    "km.start_kernel()\n"
    "with provisionalcompleter():\n"
    "    for code in sys.argv[2:]:\n"
    "        list(km.kernel.shell.Completer.completions(code, len(code)))\n"
    "km.shutdown_kernel()\n"
)


def _versions() -> str:
    found = []
    for name in ("jedi", "ipython", "ipykernel", "parso"):
        try:
            found.append(f"{name}={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name}=none")
    return ";".join(found)


#: The file in a cache folder that names the Python environment it serves.
SOURCE = "environment.txt"


def cache_dir() -> Path:
    """Where the cache lives: per user, Python environment, recipe and library versions."""
    version = f"{sys.version_info[0]}{sys.version_info[1]}"
    key = f"{sys.prefix}\n{_BUILD}{WARM_CODES}{_versions()}"
    digest = hashlib.sha256(key.encode()).hexdigest()[:12]
    return Path.home() / ".cache" / "hopx-kernel" / f"jedi-py{version}-{digest}"


def prune(parent: Path) -> list[Path]:
    """Remove the caches in ``parent`` whose Python environment no longer exists (a deleted
    checkout's), or that do not say which it was; the ones removed."""
    removed = []
    for folder in parent.glob("jedi-py*"):
        if ".tmp-" in folder.name or not folder.is_dir():
            continue  # another server's build under way
        try:
            prefix = (folder / SOURCE).read_text().strip()
        except OSError:
            prefix = ""
        if not prefix or not Path(prefix).is_dir():
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


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
            [sys.executable, "-c", _BUILD, str(tmp), *WARM_CODES],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            timeout=timeout,
            check=True,
        )
        (tmp / SOURCE).write_text(sys.prefix + "\n")
        os.rename(tmp, folder)  # atomic; fails if another server got there first
    except (OSError, subprocess.SubprocessError):
        pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    prune(folder.parent)
    return ready(folder)
