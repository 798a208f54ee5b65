"""Commands and background code in a sandbox (``/commands/*``, ``/execute/background``):
the argv and timeout a request asks for, and one process run to its end in the sandbox's
folder and environment, its outcome recorded on its :class:`~.processes.Process`. The
handlers that answer for them are in :mod:`..web.commands`."""

from __future__ import annotations

import os
import sys
import time
from typing import Any

from ...frames import LANGUAGE_ALIASES
from ..runtime import safefs
from ..runtime.subproc import run_process
from ..server_errors import ServerError
from .environment import validate_env
from .paths import host_root, locate
from .processes import MAX_TIMEOUT, Process


def command_argv(body: dict[str, Any]) -> tuple[list[str], str]:
    """The argv of a ``/commands/*`` body, and the command line to show.

    Both SDKs send ``{"command": "bash", "args": ["-c", line]}``; the docs show a bare
    ``command`` string, which runs under ``bash -c``.
    """
    command = body.get("command")
    if not isinstance(command, str) or not command.strip():
        raise ServerError(400, "MISSING_PARAMETER", "field 'command' (non-empty string) is required")
    args = body.get("args")
    if args is None:
        return ["bash", "-c", command], command
    if not isinstance(args, list) or not all(isinstance(a, str) for a in args):
        raise ServerError(400, "INVALID_REQUEST", "field 'args' must be a list of strings")
    return [command, *args], " ".join([command, *args])


def code_argv(body: dict[str, Any]) -> tuple[list[str], str, str]:
    """The argv of an ``/execute/background`` body, the language, and the code."""
    code = body.get("code")
    if not isinstance(code, str):
        raise ServerError(400, "MISSING_PARAMETER", "field 'code' (string) is required")
    language = body.get("language") or "python"
    if not isinstance(language, str):
        raise ServerError(400, "INVALID_REQUEST", "field 'language' must be a string")
    language = LANGUAGE_ALIASES.get(language.lower(), language.lower())
    argv = {
        "python": [sys.executable, "-u", "-c", code],
        "bash": ["bash", "-c", code],
        "javascript": ["node", "-e", code],
    }.get(language)
    if argv is None:
        raise ServerError(
            400,
            "INVALID_REQUEST",
            f"language {language!r} cannot run in the background here (use python, bash or javascript)",
        )
    return argv, language, code


def timeout_of(body: dict[str, Any], default: float) -> float:
    """The request's ``timeout`` in seconds (``default`` when absent), capped."""
    value = body.get("timeout", default)
    if value is None:
        value = default
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise ServerError(400, "INVALID_REQUEST", "field 'timeout' must be a number of seconds >= 0")
    return float(min(value or MAX_TIMEOUT, MAX_TIMEOUT))


async def run_to_end(ctx, sandbox, proc: Process, argv: list[str], body: dict[str, Any]) -> None:
    """Run one process to its end, recording its outcome on ``proc``."""
    try:
        env = {
            **ctx.base_env,
            **sandbox.runner.private_env(),
            **sandbox.env_vars,
            **validate_env(body.get("env") or {}),
        }
    except ValueError as exc:
        raise ServerError(400, "INVALID_REQUEST", str(exc)) from exc
    workdir = body.get("workdir") or body.get("working_dir") or "/workspace"
    if not isinstance(workdir, str):
        raise ServerError(400, "INVALID_REQUEST", "field 'workdir' must be a string")
    virtual, rel = locate(workdir)
    # Resolved once, race-free: the child starts in the very directory this descriptor
    # holds (chdir to /proc/self/fd/N follows the descriptor, not a path sandbox code
    # could swap for a symlink in between). Called inline, not in a thread: a few openat
    # calls that never block (O_DIRECTORY fails at once on a FIFO), and the background
    # handlers rely on a bad workdir raising before this coroutine first yields.
    dir_fd = safefs.open_dir(host_root(sandbox.folder, virtual), rel)
    try:
        code, timed_out = await run_process(
            argv,
            cwd=f"/proc/self/fd/{dir_fd}",
            env=env,
            emit=proc.emit,
            control=proc.control,
            limits=ctx.limits,
            on_start=lambda pid: setattr(proc, "pid", pid),
        )
    except FileNotFoundError as exc:
        proc.status, proc.ended, proc.exit_code = "failed", time.time(), 127
        raise ServerError(400, "COMMAND_FAILED", f"could not start {argv[0]!r}: {exc.strerror}") from exc
    finally:
        os.close(dir_fd)
    proc.ended, proc.exit_code = time.time(), code
    if proc.status == "killed":
        return
    if timed_out:
        proc.status = "timeout"
    elif proc.truncated:
        proc.status = "failed"
    else:
        proc.status = "completed" if code == 0 else "failed"
