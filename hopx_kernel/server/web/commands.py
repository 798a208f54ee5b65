"""Commands and background executions (docs/protocol.md §2.3; what both official SDKs call).

- ``POST /commands/run``: run a command to its end and answer with its output.
- ``POST /commands/background`` and ``POST /execute/background``: start it, answer at once
  with a ``process_id``; ``GET /execute/processes`` (and ``GET /processes``) list them.
- Kill: ``POST /execute/kill/{id}`` (Python sync and JS SDK), ``POST /processes/{id}/kill``
  (Python async SDK), ``DELETE /execute/kill?process_id=`` and ``DELETE /execute/kill`` with
  ``{"process_id"}`` (the agent's OpenAPI file and the docs).

Every process runs in its own process group under a time limit (the request's ``timeout``,
capped at :data:`..domain.processes.MAX_TIMEOUT`), with its kept output capped at
:data:`..domain.processes.OUTPUT_CAP` per stream; going over the cap stops it. Whatever a
process leaves running in its group is killed when it ends, and every process of a
sandbox is killed when the sandbox ends. What to run, and running it, is
:mod:`..domain.process_runs`; this module answers for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import time

from ..domain.process_runs import code_argv, command_argv, run_to_end, timeout_of
from ..domain.processes import OUTPUT_CAP, Process, ProcessTable
from ..domain.timestamps import now_rfc3339, rfc3339
from ..runtime.run_control import RunControl
from ..server_errors import ServerError
from .agent_plane import AgentHandler


def _table(sandbox) -> ProcessTable:
    return sandbox.processes


class CommandRunHandler(AgentHandler):
    """``POST /commands/run``: run a command, answer with its output when it ends."""

    _proc: Process | None = None

    def on_connection_close(self) -> None:
        if self._proc is not None:
            self._proc.control.abandon()

    async def post(self) -> None:
        body = self.json_body()
        argv, line = command_argv(body)
        timeout = timeout_of(body, 30.0)
        proc = self._proc = Process("cmd_" + secrets.token_hex(6), None, "bash", line, RunControl(timeout))
        started = time.monotonic()
        await run_to_end(self.state.ctx, self.sandbox, proc, argv, body)
        out = {
            "stdout": "".join(proc.stdout),
            "stderr": "".join(proc.stderr),
            "exit_code": proc.exit_code,
            "execution_time": round(time.monotonic() - started, 6),
            "command": line,
            "pid": proc.pid,
            "success": proc.status == "completed",
            "timestamp": now_rfc3339(),
        }
        if proc.status == "timeout":
            message = (
                f"command timed out after {timeout:g} s and was stopped; raise 'timeout' "
                "or run it in the background"
            )
            self.reply({**out, "error": message, "message": message, "code": "EXECUTION_TIMEOUT"}, 408)
        elif proc.truncated:
            message = (
                f"command printed more than {OUTPUT_CAP // (1024 * 1024)} MiB on one "
                "stream and was stopped; write large output to a file instead"
            )
            self.reply({**out, "error": message, "message": message, "code": "COMMAND_FAILED"}, 413)
        else:
            self.reply(out)


class BackgroundHandler(AgentHandler):
    """``POST /commands/background`` and ``POST /execute/background``: start, answer at once."""

    async def post(self, kind: str) -> None:
        body = self.json_body()
        if kind == "commands":
            argv, shown = command_argv(body)
            language, default_timeout = "bash", 120.0
        else:
            argv, language, shown = code_argv(body)
            default_timeout = 300.0
        name = body.get("name")
        proc = Process(
            "proc_" + secrets.token_hex(6),
            name if isinstance(name, str) else None,
            language,
            shown,
            RunControl(timeout_of(body, default_timeout)),
        )
        # validate the request (workdir, env) before answering: run_to_end raises at once
        task = asyncio.ensure_future(run_to_end(self.state.ctx, self.sandbox, proc, argv, body))
        await asyncio.sleep(0)
        failure = task.exception() if task.done() else None
        if failure is not None:
            raise failure
        proc.task = task
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        _table(self.sandbox).add(proc)
        self.reply(
            {
                "process_id": proc.process_id,
                "execution_id": proc.process_id,
                "status": "running",
                "name": proc.name,
                "start_time": rfc3339(proc.started),
                "message": f"started in the background; GET /execute/processes shows it, "
                f"POST /execute/kill/{proc.process_id} stops it",
            }
        )


class ProcessesHandler(AgentHandler):
    """``GET /execute/processes`` and ``GET /processes``: this sandbox's background processes."""

    def get(self) -> None:
        items = [p.describe() for p in _table(self.sandbox).list()]
        self.reply({"processes": items, "count": len(items), "timestamp": now_rfc3339()})


class KillHandler(AgentHandler):
    """Every kill variant the SDKs and docs use; one answer shape."""

    async def post(self, process_id: str | None = None) -> None:
        await self.delete(process_id)

    async def delete(self, process_id: str | None = None) -> None:
        process_id = process_id or self.get_query_argument("process_id", None)
        if not process_id:
            process_id = self.json_body().get("process_id")
        if not isinstance(process_id, str) or not process_id:
            raise ServerError(400, "MISSING_PARAMETER", "parameter 'process_id' is required")
        await self._kill(process_id)

    async def _kill(self, process_id: str) -> None:
        proc = _table(self.sandbox).get(process_id)
        if proc.status != "running":
            raise ServerError(
                409,
                "CONFLICT",
                f"process {process_id!r} already ended ({proc.status}); nothing to kill",
                {"process_id": process_id, "status": proc.status},
            )
        proc.status = "killed"
        proc.control.abandon()
        if proc.task is not None:
            with contextlib.suppress(BaseException):
                await proc.task
        self.reply(
            {"process_id": process_id, "status": "killed", "message": f"process {process_id} was killed"}
        )


__all__ = ["BackgroundHandler", "CommandRunHandler", "KillHandler", "ProcessesHandler"]
