"""One execution in a sandbox, for any language, shared by ``/execute`` and the stream.

:func:`execute` takes a parsed ``execute`` frame, waits its turn on the sandbox (one
execution at a time, in arrival order), runs the code and emits every agent frame up to
and including ``result``; the caller sends ``complete`` with the returned success flag.

For Python, the per-execution ``env`` and ``workdir`` and changes to the sandbox's
``/env`` variables are applied by quiet bookkeeping executions before the cell, and the
per-execution parts are undone after it (:func:`prelude_code`, :func:`postlude_code`).
"""

from __future__ import annotations

import asyncio
import dataclasses
import shutil
import time
from collections.abc import Mapping
from dataclasses import dataclass

from ...frames import AgentError, Execute, Result, Stream
from ..runtime import safefs
from ..runtime.run_control import Ask, CellOutcome, Emit, Limits, RunControl
from ..runtime.subproc import run_process
from ..server_errors import ServerError
from .paths import host_root, locate
from .sandbox import Registry, Sandbox
from .timestamps import now_rfc3339


@dataclass(frozen=True)
class Context:
    """What every execution needs from the server."""

    registry: Registry
    base_env: Mapping[str, str]
    limits: Limits
    #: the Landlock ABI sandboxes are confined with (0: not confined)
    confined_abi: int = 0


def prelude_code(
    set_vars: Mapping[str, str], unset: list[str], temp_env: Mapping[str, str], workdir: str | None
) -> str:
    """Quiet code run before a cell: apply env changes, save what to restore, chdir.

    It defines no names in the user's namespace; the saved state lives on ``os``.
    """
    return (
        "def __hopx_prelude():\n"
        "    import os\n"
        f"    os.environ.update({dict(set_vars)!r})\n"
        f"    for k in {list(unset)!r}:\n"
        "        os.environ.pop(k, None)\n"
        f"    temp = {dict(temp_env)!r}\n"
        "    os._hopx_saved = ({k: os.environ.get(k) for k in temp}, os.getcwd())\n"
        "    os.environ.update(temp)\n"
        + (f"    os.chdir({workdir!r})\n" if workdir is not None else "")
        + "__hopx_prelude()\n"
        "del __hopx_prelude\n"
    )


def postlude_code() -> str:
    """Quiet code run after a cell: undo the per-execution env and working directory."""
    return (
        "def __hopx_postlude():\n"
        "    import os\n"
        "    saved = os.__dict__.pop('_hopx_saved', None)\n"
        "    if saved is None:\n"
        "        return\n"
        "    for k, v in saved[0].items():\n"
        "        if v is None:\n"
        "            os.environ.pop(k, None)\n"
        "        else:\n"
        "            os.environ[k] = v\n"
        "    try:\n"
        "        os.chdir(saved[1])\n"
        "    except OSError:\n"
        "        pass\n"
        "__hopx_postlude()\n"
        "del __hopx_postlude\n"
    )


def env_changes(wanted: Mapping[str, str], applied: Mapping[str, str]) -> tuple[dict[str, str], list[str]]:
    """What to set and unset so a kernel that has ``applied`` ends up with ``wanted``."""
    to_set = {k: v for k, v in wanted.items() if applied.get(k) != v}
    to_unset = [k for k in applied if k not in wanted]
    return to_set, to_unset


def as_run(frame: Execute, agent_extensions: bool) -> Execute:
    """The request as this agent runs it: ``extensions`` only when the client asked and the
    agent offers them (``--no-extensions`` ignores the ask); without them every [ext]
    client field (``allow_stdin``, ...) is ignored, as a HopX agent would.

    ``request.extensions`` is *the* gate: every [ext] frame or field the server sends
    during an execution is sent only when it is true.
    """
    if frame.extensions and agent_extensions:
        return frame
    return dataclasses.replace(
        frame, extensions=False, allow_stdin=False, msg_id=None, channel_seq=None, execution_count=None
    )


async def execute(
    ctx: Context,
    sandbox: Sandbox,
    request: Execute,
    *,
    emit: Emit,
    ask: Ask | None,
    control: RunControl,
) -> bool:
    """Run ``request`` in ``sandbox``, emitting frames through ``result``; True on success.

    Request problems (unknown language, bad workdir, paused sandbox) are answered with
    an ``error`` frame and no ``result``.
    """
    if request.language == "go":
        await emit(AgentError("language 'go' is not available in the local sandbox", "INVALID_REQUEST"))
        return False
    if request.language == "javascript" and shutil.which("node") is None:
        await emit(
            AgentError(
                "language 'javascript' needs 'node' on the server's PATH, and it was not found",
                "INVALID_REQUEST",
            )
        )
        return False
    if any("\0" in v for v in request.env.values()) or (
        request.language != "python" and "\0" in request.code
    ):
        await emit(
            AgentError("the code and environment values cannot hold NUL characters", "INVALID_REQUEST")
        )
        return False
    try:
        virtual, rel = locate(request.workdir) if request.workdir else (None, "")
    except ServerError as exc:
        await emit(AgentError(exc.message, exc.code))
        return False
    base = host_root(sandbox.folder, virtual) if virtual is not None else None
    host_dir = (base / rel if rel else base) if base is not None else None
    if base is not None and not await asyncio.to_thread(safefs.is_dir, base, rel):
        await emit(
            AgentError(
                f"workdir {request.workdir!r} is not a directory in the sandbox", "DIRECTORY_NOT_FOUND"
            )
        )
        return False
    async with sandbox.lock:
        if sandbox.ended:
            await emit(AgentError(sandbox.end_reason or "the sandbox ended", "SANDBOX_EXPIRED"))
            return False
        if sandbox.status == "paused":
            await emit(AgentError(f"sandbox {sandbox.id} is paused; resume it first", "CONFLICT"))
            return False
        if control.abandoned:
            return False
        if request.extensions and request.channel_seq:
            await sandbox.hub.wait_delivered(request.channel_seq)
        started = time.monotonic()
        if request.language == "python":
            return await _run_python(ctx, sandbox, request, host_dir, emit, ask, control, started)
        return await _run_subprocess(ctx, sandbox, request, host_dir, emit, control, started)


async def _run_python(ctx, sandbox, request, host_dir, emit, ask, control, started) -> bool:
    runner = sandbox.runner
    to_set, to_unset = env_changes(sandbox.env_vars, sandbox.applied_env)
    # no chdir when the kernel already is there (the SDK asks for /workspace every time)
    workdir = str(host_dir) if host_dir is not None and str(host_dir) != runner.cwd else None
    bookkeeping = bool(to_set or to_unset or request.env or workdir is not None)
    if bookkeeping:
        if await runner.run_silent(prelude_code(to_set, to_unset, request.env, workdir)):
            sandbox.applied_env = dict(sandbox.env_vars)
    outcome = await runner.run_cell(
        request.code,
        allow_stdin=request.allow_stdin,
        emit=emit,
        ask=ask,
        control=control,
        msg_id=request.msg_id if request.extensions else None,
        extensions=request.extensions,
        # [ext] only for a client that asked for extensions: others keep HopX's frames
        execution_count=request.execution_count if request.extensions else None,
    )
    if bookkeeping and outcome.died is None:
        await runner.run_silent(postlude_code())
    elapsed = round(time.monotonic() - started, 6)
    if outcome.died is not None:
        return await _died(ctx, sandbox, outcome, emit, elapsed)
    if outcome.timed_out:
        await emit(_timeout_error(control))
    failed = outcome.status != "ok" or outcome.timed_out
    await emit(
        Result(
            exit_code=1 if failed else 0,
            execution_time=elapsed,
            data=outcome.data,
            metadata=outcome.metadata,
            ename=outcome.ename,
            evalue=outcome.evalue,
            traceback=outcome.traceback,
            payload=outcome.payload,
        )
    )
    return not failed


def _timeout_error(control: RunControl) -> AgentError:
    seconds = f"{control.timeout:g}"
    return AgentError(f"execution exceeded its {seconds} s timeout and was interrupted", "EXECUTION_TIMEOUT")


async def _died(ctx: Context, sandbox: Sandbox, outcome: CellOutcome, emit, elapsed) -> bool:
    if sandbox.ended:  # deleted or expired while running
        await emit(AgentError(sandbox.end_reason or "the sandbox ended", "SANDBOX_EXPIRED"))
    else:
        message = f"the sandbox's Python process died ({outcome.died}); its state is lost"
        await emit(AgentError(message, "SANDBOX_DIED"))
        await ctx.registry.end(sandbox.id, f"sandbox {sandbox.id} ended: {message}")
    await emit(Result(exit_code=1, execution_time=elapsed))
    return False


async def _run_subprocess(ctx, sandbox, request, host_dir, emit, control, started) -> bool:
    runner = sandbox.runner
    env = {**ctx.base_env, **runner.private_env(), **sandbox.env_vars, **request.env}
    if request.language == "bash":
        argv = ["bash", "-c", request.code]
    else:
        argv = ["node", "-e", request.code]
    try:
        code, timed_out = await run_process(
            argv,
            cwd=host_dir or sandbox.folder,
            env=env,
            emit=emit,
            control=control,
            limits=ctx.limits,
        )
    except OSError as exc:
        await emit(AgentError(f"could not start {argv[0]}: {exc}", "EXECUTION_FAILED"))
        return False
    if timed_out:
        await emit(_timeout_error(control))
        code = code or 124
    await emit(Result(exit_code=code, execution_time=round(time.monotonic() - started, 6)))
    return code == 0 and not timed_out


def timestamped(frame) -> str | None:
    """The timestamp to put on a frame: stdout, stderr, result and error frames get one."""
    if isinstance(frame, (Stream, Result, AgentError)):
        return now_rfc3339()
    return None


__all__ = ["Context", "as_run", "execute", "env_changes", "prelude_code", "postlude_code", "timestamped"]
