"""The shared tornado handler base: loopback guard, JSON in/out, error bodies."""

from __future__ import annotations

import json
import logging
from typing import Any

from tornado.web import HTTPError, RequestHandler
from tornado.websocket import WebSocketHandler

from ..server_errors import ServerError
from . import auth
from .bodies import agent_error_body, control_error_body, new_request_id

log = logging.getLogger(__name__)

_STATUS_CODES = {
    400: "INVALID_REQUEST",
    401: "AUTHENTICATION_REQUIRED",
    403: "FORBIDDEN",
    404: "RESOURCE_NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    410: "SANDBOX_EXPIRED",
    413: "INVALID_REQUEST",
}

FOREIGN_HOST = ServerError(
    403,
    "FORBIDDEN",
    "the Host header must name the loopback interface (127.0.0.1, localhost or [::1])",
)


def check_host(headers: Any) -> None:
    """Refuse a request whose Host header is not loopback (DNS-rebinding guard)."""
    if not auth.is_loopback_host(headers.get("Host")):
        raise FOREIGN_HOST


class SandboxWebSocket(WebSocketHandler):
    """A WebSocket to one sandbox: loopback Host and Origin only, the sandbox found by its
    bearer token before the upgrade (``self.sandbox``); a refusal is an agent error body."""

    state: Any
    sandbox: Any  # the Sandbox, set in get() before the socket opens

    async def get(self, *args: Any, **kwargs: Any) -> None:
        try:
            check_host(self.request.headers)
            origin = self.request.headers.get("Origin")
            if origin is not None and not auth.is_loopback_origin(origin):
                raise ServerError(
                    403,
                    "FORBIDDEN",
                    "cross-origin WebSocket refused: only pages served from loopback may connect",
                )
            self.sandbox = self.state.registry.by_token(auth.bearer_token(self.request.headers))
        except ServerError as exc:
            self.set_status(exc.status)
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(agent_error_body(exc.code, exc.message, new_request_id())))
            return
        await super().get(*args, **kwargs)

    def check_origin(self, origin: str) -> bool:
        return auth.is_loopback_origin(origin)


class JsonHandler(RequestHandler):
    """Base of every HTTP handler: JSON bodies and errors in the plane's shape.

    ``plane`` selects the error body: ``"control"`` (nested, docs/protocol.md §1) or
    ``"agent"`` (flat ``error`` string, docs/protocol.md §2).
    """

    plane = "control"

    def initialize(self, state: Any) -> None:
        self.state = state
        self.request_id = new_request_id()

    def prepare(self) -> None:
        check_host(self.request.headers)

    def set_default_headers(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")

    def json_body(self) -> dict[str, Any]:
        """The request body as a JSON object ({} when empty)."""
        raw = self.request.body
        if not raw or raw.isspace():
            return {}
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ServerError(400, "INVALID_JSON", "the request body is not valid JSON") from exc
        if not isinstance(body, dict):
            raise ServerError(400, "INVALID_JSON", "the request body must be a JSON object")
        return body

    def reply(self, body: Any, status: int = 200) -> None:
        """Finish with a JSON body."""
        self.set_status(status)
        self.finish(json.dumps(body, ensure_ascii=False))

    def error_body(self, code: str, message: str, details: dict | None) -> dict:
        if self.plane == "agent":
            return agent_error_body(code, message, self.request_id, details)
        return control_error_body(code, message, self.request_id, details)

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None, None))[1]
        details = None
        if isinstance(exc, ServerError):
            status, code, message, details = exc.status, exc.code, exc.message, exc.details
        elif isinstance(exc, HTTPError):
            status = exc.status_code
            code = _STATUS_CODES.get(status, "INTERNAL_ERROR" if status >= 500 else "ERROR")
            message = exc.log_message % exc.args if exc.log_message else (exc.reason or self._reason)
        elif status_code < 500:
            status, code, message = status_code, _STATUS_CODES.get(status_code, "ERROR"), self._reason
        else:
            status, code = 500, "INTERNAL_ERROR"
            message = f"internal error in the local sandbox server (request {self.request_id})"
        self.clear_header("Content-Type")
        self.set_header("Content-Type", "application/json")
        self.set_status(status)
        self.set_header("X-Request-ID", self.request_id)
        self.finish(json.dumps(self.error_body(code, message, details), ensure_ascii=False))

    def log_exception(self, typ, value, tb) -> None:
        if isinstance(value, (ServerError, HTTPError)):
            log.info(
                "%s %s -> %s",
                self.request.method,
                self.request.path[:200],
                getattr(value, "status", getattr(value, "status_code", "?")),
            )
            return
        log.error(
            "unexpected error on %s %s (%s)",
            self.request.method,
            self.request.path,
            self.request_id,
            exc_info=(typ, value, tb),
        )


class NotFoundHandler(JsonHandler):
    """Any path no route matches."""

    def prepare(self) -> None:
        check_host(self.request.headers)
        self.plane = "control" if self.request.path.startswith("/v1/") else "agent"
        raise ServerError(404, "RESOURCE_NOT_FOUND", f"no such endpoint: {self.request.path}")
