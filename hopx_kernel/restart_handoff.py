"""A kernel restart keeps its embedded server (the server's side: ``server/domain/handoff.py``).

A restart ends the kernel process and starts a new one on the same connection file. The
ending kernel deletes its sandbox, *offers* its server (``POST /local/handoff``: the
server starts a fresh sandbox kernel ahead and waits for a successor instead of ending
with its parent) and writes where it is to a file beside the connection file, readable by
this user only, as the connection file is. The new kernel process, first thing, takes
that file (read once, then removed) and *adopts* the server (``POST /local/adopt`` with
its pid). Anything amiss (no file, a server that is gone, a refusal) and it starts a
server of its own as on a first start; an offer nobody adopts ends the server after its
grace. Saves the server's and the sandbox kernel's start (~0.5 s) on every restart.
"""

from __future__ import annotations

import json
import os
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from .local_server import LocalServer
from .loopback import is_loopback_url

#: Appended to the connection file's path to name the handoff file.
SUFFIX = ".hopx-server.json"
#: Seconds a handoff call to the local server may take.
CALL_TIMEOUT = 3.0


def handoff_path(connection_file: str) -> Path:
    """Where the server of the kernel on ``connection_file`` is handed over.

    Example:
        >>> str(handoff_path("/run/jupyter/kernel-1.json"))
        '/run/jupyter/kernel-1.json.hopx-server.json'
    """
    return Path(connection_file + SUFFIX)


def connection_file(argv: Sequence[str]) -> str | None:
    """The ``-f``/``--f`` value of a kernel command line (ipykernel's spellings).

    Example:
        >>> connection_file(["-f", "/r/k.json"]), connection_file(["--f=/r/k.json"]), connection_file([])
        ('/r/k.json', '/r/k.json', None)
    """
    for i, arg in enumerate(argv):
        if arg in ("-f", "--f", "--IPKernelApp.connection_file") and i + 1 < len(argv):
            return argv[i + 1]
        for flag in ("-f=", "--f=", "--IPKernelApp.connection_file="):
            if arg.startswith(flag):
                return arg[len(flag) :]
    return None


def _call(base_url: str, api_key: str, action: str, body: dict) -> bool:
    """POST ``/local/<action>`` to a loopback server; True on a 2xx answer."""
    if not is_loopback_url(base_url):
        return False
    request = urllib.request.Request(
        f"{base_url.rstrip('/')}/local/{action}",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=CALL_TIMEOUT) as answer:
            return 200 <= answer.status < 300
    except (OSError, urllib.error.URLError, ValueError):
        return False


def offer(server: LocalServer, path: Path) -> bool:
    """Offer ``server`` to the next kernel process and say where it is in ``path``;
    False (nothing written) when the server refused or is gone."""
    if not server.running():
        return False
    base_url, api_key = server.ready(CALL_TIMEOUT)
    if not _call(base_url, api_key, "handoff", {"note": str(path)}):
        return False
    record = {"pid": server.pid, "base_url": base_url, "api_key": api_key, "root": server.root}
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(record, out)
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        return False
    return True


def take(path: Path) -> LocalServer | None:
    """The server handed over in ``path``, adopted by this process; None when there is
    none to adopt (the file is removed either way)."""
    try:
        raw = path.read_text()
    except OSError:
        return None
    path.unlink(missing_ok=True)
    try:
        record = json.loads(raw)
        pid, base_url, api_key = int(record["pid"]), str(record["base_url"]), str(record["api_key"])
        root = record.get("root")
    except (ValueError, KeyError, TypeError):
        return None
    server = LocalServer.adopted(pid, base_url, api_key, str(root) if root else None)
    if not server.running() or not _call(base_url, api_key, "adopt", {"parent_pid": os.getpid()}):
        return None
    return server


__all__ = ["SUFFIX", "connection_file", "handoff_path", "offer", "take"]
