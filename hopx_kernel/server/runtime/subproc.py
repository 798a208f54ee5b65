"""bash and javascript executions: one subprocess per execution, output streamed.

The process runs in its own process group, so an interrupt (SIGINT), a timeout or a
client that went away reaches everything it started; when it ends, whatever it left
running in its group is killed.
"""

from __future__ import annotations

import asyncio
import codecs
import contextlib
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ...frames import Stream, split_text
from . import confinement
from .process_groups import group_size, kill_group, process_cap_reason
from .run_control import Emit, Limits, RunControl

#: Seconds between SIGINT and SIGKILL once an execution must stop.
KILL_GRACE = 2.0
READ_SIZE = 64 * 1024


def _limiter(limits: Limits):
    if not (limits.memory_mb or limits.max_procs):
        return None

    def apply() -> None:  # runs in the child, between fork and exec
        import resource

        if limits.memory_mb:
            cap = limits.memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        if limits.max_procs:
            resource.setrlimit(resource.RLIMIT_NPROC, (limits.max_procs, limits.max_procs))

    return apply


async def _pump(stream: asyncio.StreamReader | None, name: str, emit: Emit) -> None:
    if stream is None:  # (not piped; run() always pipes both)
        return
    decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
    while True:
        chunk = await stream.read(READ_SIZE)
        text = decoder.decode(chunk, final=not chunk)
        for piece in split_text(text) if text else []:
            await emit(Stream(name, piece))
        if not chunk:
            return


def _signal_group(pgid: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signum)


#: The folder holding the hopx_kernel package (the confinement launcher imports it).
PACKAGE_PARENT = str(Path(__file__).resolve().parents[3])


async def run_process(
    argv: list[str],
    *,
    cwd: Path | str,
    env: dict[str, str],
    emit: Emit,
    control: RunControl,
    limits: Limits,
    on_start: Callable[[int], None] | None = None,
) -> tuple[int, bool]:
    """Run ``argv``, streaming its output; returns (exit code, timed out).

    A process killed by a signal reports ``128 + signal``, as shells do. ``on_start`` is
    told the process id once it runs. When ``env`` holds confinement rules
    (:mod:`.confinement`), a launcher applies them and then execs ``argv``: the process
    is confined like the sandbox's kernel.
    """
    if confinement.ENV in env:
        env = {**env, "PYTHONPATH": os.pathsep.join(p for p in (PACKAGE_PARENT, env.get("PYTHONPATH")) if p)}
        argv = [sys.executable, "-m", "hopx_kernel.server.runtime.confinement", *argv]
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=str(cwd),
        env=env,
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
        preexec_fn=_limiter(limits),
    )
    pgid = proc.pid
    if on_start is not None:
        on_start(pgid)
    queue: asyncio.Queue = asyncio.Queue()
    control.start(lambda: queue.put_nowait("control"))
    pumps = asyncio.gather(_pump(proc.stdout, "stdout", emit), _pump(proc.stderr, "stderr", emit))
    waiter = asyncio.ensure_future(proc.wait())
    handled, forced_at, timed_out = 0, None, False
    try:
        while not waiter.done():
            if limits.max_procs and await asyncio.to_thread(group_size, pgid) > limits.max_procs:
                await kill_group(pgid)  # RLIMIT_NPROC does not hold for root: count ourselves
                await emit(Stream("stderr", f"\n[hopx] stopped: {process_cap_reason(limits.max_procs)}\n"))
                break
            woken = asyncio.ensure_future(queue.get())
            await asyncio.wait({waiter, woken}, timeout=0.25, return_when=asyncio.FIRST_COMPLETED)
            woken.cancel()
            now = time.monotonic()
            if control.interrupts > handled:
                handled = control.interrupts
                _signal_group(pgid, signal.SIGINT)
            expired = control.deadline is not None and now >= control.deadline
            timed_out = timed_out or expired
            if (expired or control.abandoned) and not waiter.done():
                if forced_at is None:
                    forced_at = now
                    _signal_group(pgid, signal.SIGINT)
                elif now - forced_at > KILL_GRACE:
                    _signal_group(pgid, signal.SIGKILL)
        _signal_group(pgid, signal.SIGKILL)  # leftovers it started in the background
        await pumps
    finally:
        if not waiter.done():
            _signal_group(pgid, signal.SIGKILL)
            await waiter
        pumps.cancel()
        with contextlib.suppress(BaseException):
            await pumps
    code = waiter.result()  # proc.returncode, typed
    return (128 - code if code < 0 else code), timed_out
