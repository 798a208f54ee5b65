"""Start the local sandbox server for embedded mode.

The server runs in its own process (own GIL, so a busy kernel never starves its output
pump) and its own session (so Jupyter's interrupt, a SIGINT to the kernel's process group,
does not reach it). ``--parent-pid`` makes it exit with the kernel however the kernel dies.

:func:`prestart` can be called first thing at process start, before ipykernel is
imported, so the server boots while the kernel does.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
from collections.abc import Sequence

from .config import Config, from_env
from .errors import ConfigError
from .local_server import LocalServer
from .restart_handoff import connection_file, handoff_path, take

_prestarted: LocalServer | None = None

# ipykernel captures fd 2 into the notebook; keep the real stderr (taken when this module is
# first imported, before ipykernel starts) for the server's log lines.
try:
    _REAL_STDERR: int | None = os.dup(2)
except OSError:
    _REAL_STDERR = None


def server_env(environ: dict[str, str] | None = None) -> dict[str, str]:
    """The server's environment: ours without HopX credentials or session variables."""
    env = dict(os.environ if environ is None else environ)
    for name in list(env):
        if name.upper().startswith(("HOPX_", "JPY_")):
            del env[name]
    return env


def limit_args(config: Config) -> list[str]:
    """``HOPX_LOCAL_MEMORY_MB`` / ``HOPX_LOCAL_MAX_PROCS`` (read by :func:`.config.from_env`,
    which refuses a value that is not a number) → the server's limit options.

    Example:
        >>> limit_args(Config(local_memory_mb=512))
        ['--memory-limit-mb', '512']
    """
    out: list[str] = []
    if config.local_memory_mb:
        out += ["--memory-limit-mb", str(config.local_memory_mb)]
    if config.local_max_procs:
        out += ["--max-procs", str(config.local_max_procs)]
    return out


def start_server(config: Config, parent_pid: int | None = None) -> LocalServer:
    """Spawn ``python -m hopx_kernel.server`` on a free loopback port; returns at once.

    The server's folder (sandboxes and kernel files) is made here and removed by
    :func:`stop_server`, so it goes even when the server itself was killed.
    """
    root = tempfile.mkdtemp(prefix="hopx-local-")
    args = [
        "--port",
        "0",
        "--root",
        root,
        "--remove-root",  # also when the kernel is SIGKILLed and --parent-pid ends the server
        "--parent-pid",
        str(parent_pid or os.getpid()),
        "--log-level",
        "warning",
        # the kernel's one sandbox is started at once; no spare kernel after it (~55 MB and a
        # CPU-heavy boot competing with the first cell, for a server that ends with the kernel)
        "--no-pool-refill",
        *limit_args(config),
    ]
    return LocalServer.start(
        args,
        env=server_env(),
        stderr=_REAL_STDERR if _REAL_STDERR is not None else subprocess.DEVNULL,
        root=root,
    )


def prestart(argv: Sequence[str] | None = None) -> None:
    """Start the server now if this process will run in embedded mode, or adopt the one
    the kernel before a restart handed over (:mod:`.restart_handoff`). ``argv``: the
    kernel's command line (default ``sys.argv[1:]``), for its connection file."""
    global _prestarted
    try:
        config = from_env(os.environ)
    except ConfigError:
        return  # the kernel reports it on the first cell
    if _prestarted is None and config.mode == "embedded":
        _prestarted = handed_over(sys.argv[1:] if argv is None else argv) or start_server(config)


def handed_over(argv: Sequence[str]) -> LocalServer | None:
    """The server a restarting kernel on this connection file handed over, now ours."""
    path = connection_file(argv)
    return take(handoff_path(path)) if path else None


def discard() -> None:
    """Stop the pre-started server if no session took it (the kernel failed to start)."""
    global _prestarted
    server, _prestarted = _prestarted, None
    if server is not None:
        stop_server(server)


def take_server(config: Config) -> LocalServer:
    """The pre-started server if there is one, else a newly started one."""
    global _prestarted
    server, _prestarted = _prestarted, None
    if server is not None and server.running():
        return server
    return start_server(config)


async def wait_ready(server: LocalServer, timeout: float = 60.0) -> tuple[str, str]:
    """The server's ``(base_url, api_key)``, read off the event loop.

    Raises:
        Unreachable: the server exited or said nothing in time (it has been stopped).
    """
    return await asyncio.to_thread(server.ready, timeout)


def stop_server(server: LocalServer, grace: float = 3.0) -> None:
    """SIGTERM the server (it ends its sandboxes), SIGKILL its group if it lingers, and
    remove its folder (also when it had already died)."""
    server.stop(grace)
