"""Sandbox process groups: counted (orphans included), killed to the last process, and
why a sandbox's kernel ended, in one readable line."""

from __future__ import annotations

import asyncio
import os
import signal

import psutil


def group_size(pgid: int) -> int:
    """How many live processes are in process group ``pgid`` (orphans included)."""
    count = 0
    for pid in psutil.pids():
        try:
            if os.getpgid(pid) == pgid and psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                count += 1
        except (OSError, psutil.Error):
            continue
    return count


async def kill_group(pgid: int, tries: int = 40) -> None:
    """SIGKILL process group ``pgid`` until it is empty (a fork bomb keeps forking)."""
    for _ in range(tries):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        if await asyncio.to_thread(group_size, pgid) == 0:
            return
        await asyncio.sleep(0.05)


def process_cap_reason(max_procs: int) -> str:
    """Why a sandbox whose kernel went over ``--max-procs`` was ended."""
    return (
        f"it started more than {max_procs} processes, the sandbox's process cap "
        f"(--max-procs / HOPX_LOCAL_MAX_PROCS)"
    )


def death_reason(returncode: int | None, memory_mb: int | None) -> str:
    """A readable reason for a kernel process that ended with ``returncode``."""
    if returncode is None:
        return "it stopped answering"
    if returncode < 0:
        signum = -returncode
        try:
            name = signal.Signals(signum).name
        except ValueError:
            name = f"signal {signum}"
        reason = f"killed by signal {signum} ({name})"
        if signum == signal.SIGKILL and memory_mb:
            reason += f" — likely the {memory_mb} MB memory cap"
        return reason
    return f"exited with code {returncode}"
