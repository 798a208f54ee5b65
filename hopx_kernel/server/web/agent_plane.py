"""Agent plane over HTTP (docs/protocol.md §2, §2.3): health, blocking execute, env, completion.

Requests are routed **by bearer token**: each sandbox's own ``auth_token`` opens that
sandbox and no other; the server's API key is not an agent credential.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from ... import frames
from ...errors import FrameError
from ..domain.environment import mask_env, validate_env
from ..domain.execute_collector import ExecuteCollector
from ..domain.execution import as_run, execute
from ..domain.timestamps import rfc3339
from ..runtime.run_control import RunControl
from ..server_errors import ServerError
from . import auth
from .base import JsonHandler

VERSION = "3.2.8-local"
#: Seconds ``/complete`` and ``/inspect`` wait for a kernel that runs a cell (it answers
#: only when the cell ends)...
ASSIST_TIMEOUT = 2.0
#: ...and for an idle one: Jedi's first inference in a new kernel takes 0.3-4 s, and a
#: local ipykernel makes the frontend wait for it too.
ASSIST_IDLE_TIMEOUT = 10.0


#: Features only an agent with extensions advertises (docs/protocol.md §2.2, §2.4, §2.5).
EXTENSION_FEATURES: dict[str, Any] = {
    "stream_extensions": 1,
    "stream_reuse": 1,
    "kernel_channel": 1,
    # the sandbox kernels are ipykernel's, whose debugger needs debugpy
    "debugger": int(importlib.util.find_spec("debugpy") is not None),
}


def isolation(abi: int) -> str:
    """How sandboxes are isolated, in one honest line (``/health``, ``%hopx``)."""
    if abi:
        return (
            f"Landlock ABI {abi}: each sandbox writes only its own folders and reads no "
            "other sandbox's; same user, shared network"
        )
    return (
        "none: Landlock is unavailable, so sandboxes can read and change each other's "
        "files; same user, shared network"
    )


def health_body(extensions: bool = True, stream_reuse: bool = True, abi: int = 0) -> dict[str, Any]:
    """The ``/health`` answer; ``stream_extensions`` advertises docs/protocol.md §2.2,
    ``stream_reuse`` §2.5 (several executions in turn on one socket), ``kernel_channel`` §2.4.

    A plain agent (``--no-extensions``) advertises none of :data:`EXTENSION_FEATURES`.
    """
    body: dict[str, Any] = {
        "status": "healthy",
        "version": VERSION,
        "agent": "hopx-kernel-local",
        "features": {
            **(EXTENSION_FEATURES if extensions else {}),
            "code_execution": True,
            "websocket_streaming": True,
            "rich_output": True,
            "ipython_kernel": True,
            "file_operations": True,
            "completion": True,
            "languages": ["python", "bash", "javascript"],
            "isolation": isolation(abi),
        },
        "active_streams": 0,
    }
    features = body["features"]
    if not (stream_reuse and features.get("stream_extensions")):
        # reuse is asked for with "extensions": 1, so it goes wherever extensions go
        features.pop("stream_reuse", None)
    return body


#: When this server process started (``/info`` ``start_time``, ``uptime``).
STARTED = time.time()


def info_body(sandbox_id: str, base_url: str, extensions: bool) -> dict[str, Any]:
    """The ``GET /info`` answer: both field sets the sources name (the Python SDK's model
    and the agent's OpenAPI file), since they disagree."""
    port = urlsplit(base_url).port
    features = health_body(extensions)["features"]
    return {
        "vm_id": sandbox_id,
        "agent": "hopx-kernel-local",
        "agent_version": VERSION,
        "version": VERSION,
        "os": sys.platform,
        "platform": sys.platform,
        "arch": platform.machine(),
        "go_version": None,
        "vm_ip": "127.0.0.1",
        "ip": "127.0.0.1",
        "vm_port": port,
        "port": port,
        "start_time": rfc3339(STARTED),
        "uptime": round(time.time() - STARTED, 3),
        "endpoints": {
            "health": "GET /health",
            "info": "GET /info",
            "execute": "POST /execute",
            "execute_stream": "GET /execute/stream",
            "execute_background": "POST /execute/background",
            "execute_processes": "GET /execute/processes",
            "execute_kill": "POST /execute/kill/{id}",
            "commands_run": "POST /commands/run",
            "commands_background": "POST /commands/background",
            "files": "/files/{read,download,list,exists,write,upload,mkdir,remove}",
            "env": "/env",
        },
        "features": features,
    }


class AgentHandler(JsonHandler):
    """Base of agent-plane handlers: finds the sandbox by its bearer token."""

    plane = "agent"

    def prepare(self) -> None:
        super().prepare()
        self.sandbox = self.state.registry.by_token(auth.bearer_token(self.request.headers))


class HealthHandler(JsonHandler):
    """``GET /health``: no credentials needed."""

    plane = "agent"

    def get(self) -> None:
        self.reply(health_body(self.state.extensions, self.state.stream_reuse, self.state.ctx.confined_abi))


class InfoHandler(AgentHandler):
    """``GET /info``: what this agent is (the SDKs' ``get_agent_info`` / ``getAgentInfo``)."""

    def get(self) -> None:
        self.reply(
            info_body(self.sandbox.id, self.state.public_url or self.state.base_url, self.state.extensions)
        )


class ExecuteHandler(AgentHandler):
    """``POST /execute``: run code and answer when it ends."""

    _control: RunControl | None = None

    def on_connection_close(self) -> None:
        if self._control is not None:
            self._control.abandon()

    async def post(self) -> None:
        body = self.json_body()
        try:
            request = frames.parse_client_frame(json.dumps({**body, "type": "execute"}))
        except FrameError as exc:
            raise ServerError(400, exc.code, exc.message) from exc
        if not isinstance(request, frames.Execute):  # cannot be: "type" is set just above
            raise ServerError(400, "INVALID_REQUEST", "not an execute request")
        # as HopX runs it (no [ext] client fields); the collector flattens rich output
        request = as_run(request, agent_extensions=False)
        collector = ExecuteCollector()
        control = self._control = RunControl(request.timeout)
        success = await execute(
            self.state.ctx, self.sandbox, request, emit=collector.emit, ask=None, control=control
        )
        if collector.error is not None and collector.error.code == "EXECUTION_TIMEOUT":
            self.set_status(408)
        if collector.result is None and collector.error is not None:
            code = collector.error.code
            status = 410 if code == "SANDBOX_EXPIRED" else 409 if code == "CONFLICT" else 400
            raise ServerError(status, code, collector.error.error)
        self.reply(collector.body(success, request.language), self.get_status())


class EnvHandler(AgentHandler):
    """``GET/PUT/PATCH/DELETE /env``: variables later executions see."""

    def get(self) -> None:
        env = mask_env(self.sandbox.env_vars)
        self.reply({"env_vars": env, "count": len(env)})

    def _body_vars(self) -> dict[str, str]:
        try:
            return validate_env(self.json_body().get("env_vars", {}))
        except ValueError as exc:
            raise ServerError(400, "INVALID_REQUEST", str(exc)) from exc

    def put(self) -> None:
        self.sandbox.env_vars = self._body_vars()
        self.get()

    def patch(self) -> None:
        self.sandbox.env_vars.update(self._body_vars())
        self.get()

    def delete(self) -> None:
        self.sandbox.env_vars = {}
        self.get()


def _cursor_request(body: dict[str, Any]) -> tuple[str, int]:
    code = body.get("code")
    if not isinstance(code, str):
        raise ServerError(400, "MISSING_PARAMETER", "field 'code' (string) is required")
    pos = body.get("cursor_pos", len(code))
    if isinstance(pos, bool) or not isinstance(pos, int):
        raise ServerError(400, "INVALID_REQUEST", "field 'cursor_pos' must be an integer")
    # JupyterLab's completer asks for the documentation of an item with the code cut at the
    # item's end but the cursor moved past it; ipykernel answers that, so clamp as it does
    return code, min(max(pos, 0), len(code))


def _assist_timeout(sandbox) -> float:
    return ASSIST_TIMEOUT if sandbox.lock.locked() else ASSIST_IDLE_TIMEOUT


class CompleteHandler(AgentHandler):
    """[ext] ``POST /complete``: the kernel's completions at a cursor position."""

    async def post(self) -> None:
        code, pos = _cursor_request(self.json_body())
        reply = await self.sandbox.runner.complete(code, pos, _assist_timeout(self.sandbox))
        if reply is None:
            self.reply(
                {"matches": [], "cursor_start": pos, "cursor_end": pos, "metadata": {}, "timed_out": True}
            )
            return
        self.reply(
            {
                "matches": reply.get("matches", []),
                "cursor_start": reply.get("cursor_start", pos),
                "cursor_end": reply.get("cursor_end", pos),
                "metadata": reply.get("metadata", {}),
            }
        )


class InspectHandler(AgentHandler):
    """[ext] ``POST /inspect``: the kernel's help for the name at a cursor position."""

    async def post(self) -> None:
        body = self.json_body()
        code, pos = _cursor_request(body)
        level = body.get("detail_level", 0)
        if level not in (0, 1):
            raise ServerError(400, "INVALID_REQUEST", "field 'detail_level' must be 0 or 1")
        reply = await self.sandbox.runner.inspect(code, pos, level, _assist_timeout(self.sandbox))
        if reply is None:
            self.reply({"found": False, "data": {}, "metadata": {}, "timed_out": True})
            return
        self.reply(
            {
                "found": bool(reply.get("found")),
                "data": reply.get("data", {}),
                "metadata": reply.get("metadata", {}),
            }
        )
