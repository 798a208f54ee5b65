"""Control plane (docs/protocol.md §1): create, list, get, end and adjust sandboxes.

Every call needs the server's API key (``X-API-Key`` or ``Authorization: Bearer``).
Every 2xx answer has a JSON body, as the official SDK calls ``response.json()``.
"""

from __future__ import annotations

from typing import Any

from ..domain.environment import validate_env
from ..domain.sandbox import TEMPLATE_ID, TEMPLATES, Sandbox
from ..domain.timestamps import rfc3339
from ..domain.tokens import tokens_equal
from ..server_errors import ServerError
from . import auth
from .base import JsonHandler

#: The resources a local sandbox reports (the SDK needs all three keys or none).
RESOURCES = {"vcpu": 1, "memory_mb": 2048, "disk_mb": 10240}
ORGANIZATION_ID = 0
#: The longest ``timeout_seconds`` a sandbox takes (30 days), at create and through PUT.
MAX_TIMEOUT_SECONDS = 30 * 24 * 3600


def parse_timeout(value: object, *, zero_ok: bool) -> int | None:
    """A valid ``timeout_seconds`` (None when absent), or a clean 400.

    Example:
        >>> parse_timeout(60, zero_ok=False)
        60
    """
    if value is None and zero_ok:
        return None
    low = 0 if zero_ok else 1
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_TIMEOUT_SECONDS:
        raise ServerError(
            400,
            "INVALID_REQUEST",
            f"'timeout_seconds' must be an integer from {low} to {MAX_TIMEOUT_SECONDS} (30 days)",
        )
    return value


def sandbox_object(sandbox: Sandbox, base_url: str, memory_mb: int | None = None) -> dict:
    """The sandbox object of docs/protocol.md §1, with the fields the official SDK reads (create, get and list share it)."""
    return {
        "id": sandbox.id,
        "object": "sandbox",
        "status": sandbox.status,
        "public_host": base_url,
        "direct_url": base_url,
        "template_name": sandbox.template_name,
        "template_id": TEMPLATE_ID,
        "organization_id": ORGANIZATION_ID,
        "region": "local",
        "resources": {**RESOURCES, **({"memory_mb": memory_mb} if memory_mb else {})},
        "internet_access": sandbox.internet_access,
        "timeout_seconds": sandbox.timeout_seconds,
        "expires_at": rfc3339(sandbox.expires_at) if sandbox.expires_at else None,
        "created_at": rfc3339(sandbox.created_at),
        "auth_token": sandbox.auth_token,
        "token_expires_at": rfc3339(sandbox.token_expires_at),
    }


def known_template(name: str) -> str:
    """``name`` if this server has that template (by name or id).

    Raises:
        ServerError: 404 ``TEMPLATE_NOT_FOUND``, naming the templates there are.
    """
    if name not in TEMPLATES and name != TEMPLATE_ID:
        valid = ", ".join(repr(t) for t in TEMPLATES)
        raise ServerError(
            404,
            "TEMPLATE_NOT_FOUND",
            # no "sandbox ... not found" wording: the JS SDK would call that SandboxExpiredError
            f"unknown template {name!r}; use one of {valid}",
            {"template": name, "available_templates": list(TEMPLATES)},
        )
    return name


def parse_create(body: dict[str, Any]) -> dict[str, Any]:
    """Validate a create request; returns the keyword arguments for ``Registry.create``.

    Raises:
        ServerError: 400 for bad fields, 404 ``TEMPLATE_NOT_FOUND`` for other templates.
    """
    name = body.get("template_name")
    if name is None:
        name = body.get("template_id")
    if name is None:
        name = "code-interpreter"
    name = known_template(str(name))
    timeout = parse_timeout(body.get("timeout_seconds"), zero_ok=True)
    internet = body.get("internet_access", True)
    if not isinstance(internet, bool):
        raise ServerError(400, "INVALID_REQUEST", "'internet_access' must be a boolean")
    try:
        env_vars = validate_env(body.get("env_vars") or {})
    except ValueError as exc:
        raise ServerError(400, "INVALID_REQUEST", str(exc)) from exc
    return {
        "template_name": TEMPLATES.get(name, "code-interpreter"),
        "timeout_seconds": timeout or None,
        "internet_access": internet,
        "env_vars": env_vars,
    }


class ControlHandler(JsonHandler):
    """Base of control-plane handlers: checks the API key."""

    plane = "control"

    def prepare(self) -> None:
        super().prepare()
        key = auth.api_key_from_headers(self.request.headers)
        if not tokens_equal(key, self.state.api_key):
            raise ServerError(
                401,
                "AUTHENTICATION_REQUIRED" if not key else "INVALID_API_KEY",
                "missing or invalid API key (send 'X-API-Key: <key>')",
            )

    def show(self, sandbox: Sandbox, status: int = 200) -> None:
        self.reply(
            {
                **sandbox_object(
                    sandbox, self.state.public_url or self.state.base_url, self.state.ctx.limits.memory_mb
                ),
                "request_id": self.request_id,
            },
            status,
        )


class SandboxesHandler(ControlHandler):
    """``POST /v1/sandboxes`` and ``GET /v1/sandboxes``."""

    async def post(self) -> None:
        kwargs = parse_create(self.json_body())
        sandbox = await self.state.registry.create(**kwargs)
        self.show(sandbox, 201)

    def get(self) -> None:
        status = self.get_query_argument("status", None)
        items = [s for s in self.state.registry.list() if status in (None, s.status)]
        try:
            limit = max(1, int(self.get_query_argument("limit", "100")))
        except ValueError as exc:
            raise ServerError(400, "INVALID_REQUEST", "'limit' must be an integer") from exc
        memory = self.state.ctx.limits.memory_mb
        self.reply(
            {
                "object": "list",
                "data": [
                    sandbox_object(s, self.state.public_url or self.state.base_url, memory)
                    for s in items[:limit]
                ],
                "has_more": len(items) > limit,
                "next_cursor": None,
                "request_id": self.request_id,
                "url": "/v1/sandboxes",
            }
        )


class SandboxHandler(ControlHandler):
    """``GET`` and ``DELETE /v1/sandboxes/{id}``."""

    def get(self, sandbox_id: str) -> None:
        self.show(self.state.registry.get(sandbox_id))

    async def delete(self, sandbox_id: str) -> None:
        sandbox = self.state.registry.get(sandbox_id)
        await self.state.registry.end(sandbox.id, f"sandbox {sandbox.id} was deleted")
        self.reply(
            {
                "id": sandbox.id,
                "object": "sandbox",
                "status": "deleted",
                "deleted": True,
                "request_id": self.request_id,
            }
        )


class SandboxActionHandler(ControlHandler):
    """``PUT .../timeout``, ``POST .../token/refresh``, ``POST .../pause|resume``."""

    def put(self, sandbox_id: str, action: str) -> None:
        if action != "timeout":
            raise ServerError(405, "METHOD_NOT_ALLOWED", f"use POST for {action}")
        sandbox = self.state.registry.get(sandbox_id)
        seconds = parse_timeout(self.json_body().get("timeout_seconds"), zero_ok=False)
        self.state.registry.set_timeout(sandbox, seconds)
        self.show(sandbox)

    def post(self, sandbox_id: str, action: str) -> None:
        sandbox = self.state.registry.get(sandbox_id)
        if action == "token/refresh":
            token, expires = self.state.registry.issue_token(sandbox)
            self.reply(
                {
                    "auth_token": token,
                    "token_expires_at": rfc3339(expires),
                    "id": sandbox.id,
                    "request_id": self.request_id,
                }
            )
            return
        if action == "pause":
            sandbox.status = "paused"
        elif action == "resume":
            sandbox.status = "running"
        else:
            raise ServerError(405, "METHOD_NOT_ALLOWED", f"use PUT for {action}")
        self.show(sandbox)


def template_object(name: str) -> dict[str, Any]:
    """A ``/v1/templates`` item, with the fields the Python SDK's ``Template`` requires."""
    return {
        "id": TEMPLATE_ID if name == "code-interpreter" else f"local-{name}",
        "object": "template",
        "name": name,
        "display_name": "Code Interpreter (local)"
        if name == "code-interpreter"
        else f"{name} (alias of code-interpreter, local)",
        "description": "Python in a persistent IPython kernel, plus bash and node, on this machine",
        "category": "development",
        "language": "python",
        "features": ["code_execution", "websocket_streaming", "rich_output", "file_operations"],
        "tags": ["local"],
        "is_active": True,
        "is_public": True,
        "status": "active",
    }


class TemplatesHandler(ControlHandler):
    """``GET /v1/templates`` and ``GET /v1/templates/{name}``."""

    def get(self, name: str | None = None) -> None:
        if name is None:
            items = [template_object(n) for n in TEMPLATES]
            self.reply({"object": "list", "data": items, "has_more": False, "request_id": self.request_id})
            return
        name = known_template(name)
        self.reply(template_object("code-interpreter" if name == TEMPLATE_ID else name))
