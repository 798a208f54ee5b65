"""Start the local sandbox server for embedded mode.

The server runs in its own process (own GIL, so a busy kernel never starves its output
pump) and its own session (so Jupyter's interrupt, a SIGINT to the kernel's process group,
does not reach it). ``--parent-pid`` makes it exit with the kernel however the kernel dies.

:func:`prestart` can be called first thing at process start, before ipykernel is
imported, so the server boots while the kernel does.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from .config import Config, from_env
from .errors import ConfigError, Unreachable

_prestarted: subprocess.Popen | None = None

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


def start_server(config: Config, parent_pid: int | None = None) -> subprocess.Popen:
    """Spawn ``python -m hopx_kernel.server`` on a free loopback port; returns at once.

    The server's folder (sandboxes and kernel files) is made here and removed by
    :func:`stop_server`, so it goes even when the server itself was killed.
    """
    root = tempfile.mkdtemp(prefix="hopx-local-")
    argv = [
        sys.executable, "-m", "hopx_kernel.server",
        "--port", "0",
        "--root", root,
        "--remove-root",  # also when the kernel is SIGKILLed and --parent-pid ends the server
        "--parent-pid", str(parent_pid or os.getpid()),
        "--log-level", "warning",
        # the kernel's one sandbox is started at once; no spare kernel after it (~55 MB and a
        # CPU-heavy boot competing with the first cell, for a server that ends with the kernel)
        "--no-pool-refill",
        *limit_args(config),
    ]
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=_REAL_STDERR if _REAL_STDERR is not None else subprocess.DEVNULL,
        env=server_env(),
        start_new_session=True,
        close_fds=True,
    )
    proc.hopx_root = root  # type: ignore[attr-defined]
    return proc


def prestart() -> None:
    """Start the server now if this process will run in embedded mode."""
    global _prestarted
    try:
        config = from_env(os.environ)
    except ConfigError:
        return  # the kernel reports it on the first cell
    if _prestarted is None and config.mode == "embedded":
        _prestarted = start_server(config)


def take_server(config: Config) -> subprocess.Popen:
    """The pre-started server if there is one, else a newly started one."""
    global _prestarted
    proc, _prestarted = _prestarted, None
    if proc is not None and proc.poll() is None:
        return proc
    return start_server(config)


async def wait_ready(proc: subprocess.Popen, timeout: float = 60.0) -> tuple[str, str]:
    """Read the server's one JSON line: ``(base_url, api_key)``.

    Raises:
        Unreachable: the server exited or said nothing in time.
    """
    known = getattr(proc, "hopx_info", None)
    if known is not None:  # read before: the server prints its line only once
        return known
    assert proc.stdout is not None
    try:
        line = await asyncio.wait_for(asyncio.to_thread(proc.stdout.readline), timeout)
    except asyncio.TimeoutError as exc:
        stop_server(proc)
        raise Unreachable(
            f"The local sandbox server did not start within {timeout:.0f} s",
            "Restart the kernel; if it persists, run `hopx-kernel serve` to see its log.",
        ) from exc
    try:
        info = json.loads(line)
        proc.hopx_info = (info["base_url"], info["api_key"])  # type: ignore[attr-defined]
        return proc.hopx_info  # type: ignore[attr-defined]
    except (ValueError, KeyError, TypeError) as exc:
        code = proc.poll()
        stop_server(proc)
        raise Unreachable(
            "The local sandbox server failed to start"
            + (f" (exit status {code})" if code is not None else ""),
            "Run `hopx-kernel serve` in a terminal to see why.",
        ) from exc


def stop_server(proc: subprocess.Popen, grace: float = 3.0) -> None:
    """SIGTERM the server (it ends its sandboxes), SIGKILL its group if it lingers, and
    remove its folder (also when it had already died)."""
    if proc.poll() is None:
        try:
            proc.send_signal(signal.SIGTERM)
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                proc.kill()
            proc.wait(2)
        except OSError:
            pass
    if proc.stdout is not None:
        proc.stdout.close()
    root = getattr(proc, "hopx_root", None)
    if root:
        shutil.rmtree(root, ignore_errors=True)
