"""The background processes of one sandbox: what each is doing, and the table of them.

Pure bookkeeping (no handlers): :mod:`..web.commands` starts and answers for them, the sandbox
owns one :class:`ProcessTable` and stops everything in it when it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from dataclasses import dataclass, field
from typing import Any

from ...frames import Stream
from ..runtime.run_control import RunControl
from ..server_errors import ServerError
from .timestamps import rfc3339

#: Output kept per stream of one process; more stops the process (it is not a log store).
OUTPUT_CAP = 8 * 1024 * 1024
#: The longest a command or background execution may run, whatever it asks for.
MAX_TIMEOUT = 3600.0
#: Finished background processes remembered per sandbox (oldest forgotten first).
REMEMBER_FINISHED = 100


@dataclass(eq=False)
class Process:
    """One command or background execution of a sandbox."""

    process_id: str
    name: str | None
    language: str
    command: str
    control: RunControl
    started: float = field(default_factory=time.time)
    ended: float | None = None
    status: str = "running"  # running | completed | failed | killed | timeout
    exit_code: int | None = None
    pid: int | None = None
    stdout: list[str] = field(default_factory=list)
    stderr: list[str] = field(default_factory=list)
    sizes: dict[str, int] = field(default_factory=lambda: {"stdout": 0, "stderr": 0})
    truncated: bool = False
    task: asyncio.Task | None = None

    async def emit(self, frame: Any) -> None:
        if not isinstance(frame, Stream):
            return
        size = self.sizes[frame.name] + len(frame.data)
        if size > OUTPUT_CAP:
            # stop the process group; the rest is read and dropped, so the pipes drain
            if not self.truncated:
                self.truncated = True
                self.control.abandon()
            return
        self.sizes[frame.name] = size
        (self.stdout if frame.name == "stdout" else self.stderr).append(frame.data)

    def describe(self) -> dict[str, Any]:
        """The process-list item (fields of the agent's OpenAPI file and the docs)."""
        end = self.ended or time.time()
        return {
            "process_id": self.process_id,
            "execution_id": self.process_id,
            "name": self.name,
            "status": self.status,
            "language": self.language,
            "command": self.command,
            "start_time": rfc3339(self.started),
            "started_at": rfc3339(self.started),
            "end_time": rfc3339(self.ended) if self.ended else None,
            "completed_at": rfc3339(self.ended) if self.ended else None,
            "exit_code": self.exit_code,
            "duration": round(end - self.started, 3),
            "execution_time": round(end - self.started, 3),
            "pid": self.pid,
            "stdout": "".join(self.stdout),
            "stderr": "".join(self.stderr),
        }


class ProcessTable:
    """The commands and background executions of one sandbox."""

    def __init__(self) -> None:
        self._all: dict[str, Process] = {}

    def get(self, process_id: str) -> Process:
        proc = self._all.get(process_id)
        if proc is None:
            raise ServerError(
                404,
                "PROCESS_NOT_FOUND",
                f"no background process {process_id!r} in this sandbox; GET /execute/processes lists them",
                {"process_id": process_id},
            )
        return proc

    def list(self) -> list[Process]:
        return list(self._all.values())

    def add(self, proc: Process) -> None:
        self._all[proc.process_id] = proc
        finished = [p for p in self._all.values() if p.status != "running"]
        for old in finished[: max(0, len(finished) - REMEMBER_FINISHED)]:
            self._all.pop(old.process_id, None)

    async def kill_all(self) -> None:
        """Stop every running process and wait for each to be gone (sandbox end)."""
        tasks = [p.task for p in self._all.values() if p.task is not None and not p.task.done()]
        for proc in self._all.values():
            proc.control.abandon()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task


__all__ = ["MAX_TIMEOUT", "OUTPUT_CAP", "Process", "ProcessTable"]
