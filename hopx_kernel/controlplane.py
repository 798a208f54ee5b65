"""Async client for the HopX control plane (docs/protocol.md §1): create, get, delete, keep alive.

Talks HTTP through a connector (:mod:`.transport`; the real one is tornado's client,
already under ipykernel). Failures are translated
into :mod:`hopx_kernel.errors` here, so nothing above sees a tornado exception. The API
key is only ever put in the ``X-API-Key`` header.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from . import __version__
from .errors import ControlPlaneError, RateLimited, ServerUnavailable
from .http import fetch, json_body
from .tls import client_context
from .transport import Connector, Transport

log = logging.getLogger(__name__)

#: Statuses worth retrying: an explicit "not now" from the server.
RETRY_STATUSES = (429, 502, 503, 504)


def parse_time(value: Any) -> datetime | None:
    """RFC 3339 text (``Z`` or offset, any fractional digits) → aware datetime, else None."""
    if not isinstance(value, str) or not value:
        return None
    text = value.replace("Z", "+00:00")
    if "." in text:  # Python < 3.11 rejects more than 6 fractional digits
        head, _, rest = text.partition(".")
        digits = "".join(itertools.takewhile(str.isdigit, rest))  # not the offset's digits
        text = f"{head}.{digits[:6]}{rest[len(digits) :]}"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=timezone.utc)


@dataclass
class SandboxInfo:
    """What the kernel needs of a sandbox object."""

    id: str
    status: str
    public_host: str
    auth_token: str | None = field(default=None, repr=False)
    token_expires_at: datetime | None = None
    expires_at: datetime | None = None
    created_at: datetime | None = None
    template_name: str | None = None

    @classmethod
    def from_json(cls, obj: dict) -> SandboxInfo:
        host = obj.get("public_host") or obj.get("direct_url") or ""
        return cls(
            id=str(obj.get("id") or obj.get("sandbox_id") or ""),
            status=str(obj.get("status") or "unknown"),
            public_host=str(host).rstrip("/"),
            auth_token=obj.get("auth_token"),
            token_expires_at=parse_time(obj.get("token_expires_at")),
            expires_at=parse_time(obj.get("expires_at")),
            created_at=parse_time(obj.get("created_at")),
            template_name=obj.get("template_name"),
        )


class ControlPlane:
    """The control plane at ``base_url``, authenticated with ``api_key``.

    Args:
        base_url: e.g. ``https://api.hopx.dev``.
        api_key: the HopX API key.
        retries: how many times a 429/5xx answer is retried, with backoff.
        backoff: first wait in seconds, doubled each retry (a 429's retry-after wins).
        connector: how requests go out (default: a :class:`~.transport.Connector` of its
            own, closed by :meth:`close`; one passed in is the caller's to close).
    """

    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        retries: int = 3,
        backoff: float = 0.5,
        request_timeout: float = 60.0,
        ssl_context=None,
        connector: Transport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._ssl = ssl_context
        self._api_key = api_key
        self.retries = retries
        self.backoff = backoff
        self.request_timeout = request_timeout
        self._owns_connector = connector is None
        self._http: Transport = connector if connector is not None else Connector()

    @classmethod
    def at(
        cls, base_url: str, api_key: str, ca_bundle: str | None = None, connector: Transport | None = None
    ) -> ControlPlane:
        """The control plane at ``base_url``, verifying https against ``ca_bundle`` (the
        system store when None)."""
        https = base_url.startswith("https:")
        return cls(
            base_url, api_key, ssl_context=client_context(ca_bundle) if https else None, connector=connector
        )

    def __repr__(self) -> str:
        return f"ControlPlane({self.base_url!r})"

    async def _call(
        self, method: str, path: str, body: dict | None, *, action: str, retry: bool = True
    ) -> dict:
        url = self.base_url + path
        headers = {
            "X-API-Key": self._api_key,
            "Accept": "application/json",
            "User-Agent": f"hopx-kernel/{__version__}",
        }
        payload = None
        if body is not None or method in ("POST", "PUT"):
            headers["Content-Type"] = "application/json"
            payload = json.dumps(body or {})
        where = f"HopX at {self.base_url}"
        attempt = 0
        while True:
            try:
                response = await fetch(
                    self._http,
                    method,
                    url,
                    headers=headers,
                    body=payload,
                    timeout=self.request_timeout,
                    action=action,
                    where=where,
                    hint="Check your network connection and HOPX_BASE_URL.",
                    ssl_context=self._ssl,
                )
                return json_body(response, action=action, where=where)
            except ControlPlaneError as error:
                if not (retry and error.status in RETRY_STATUSES and attempt < self.retries):
                    if attempt:
                        error.message += f" (after {attempt + 1} attempts)"
                    raise
                wait = self.backoff * (2**attempt)
                if isinstance(error, RateLimited) and error.retry_after:
                    wait = min(error.retry_after, 30.0)
                log.warning("control plane answered %s to %s; retrying in %.1fs", error.status, action, wait)
                attempt += 1
                await asyncio.sleep(wait)

    async def create(
        self, template: str, *, timeout_seconds: int | None = None, env_vars: dict | None = None
    ) -> SandboxInfo:
        body: dict[str, Any] = {"template_name": template}
        if timeout_seconds:
            body["timeout_seconds"] = timeout_seconds
        if env_vars:
            body["env_vars"] = env_vars
        obj = await self._call("POST", "/v1/sandboxes", body, action="create a sandbox")
        return SandboxInfo.from_json(obj)

    async def get(self, sandbox_id: str) -> SandboxInfo:
        obj = await self._call("GET", f"/v1/sandboxes/{sandbox_id}", None, action="find the sandbox")
        return SandboxInfo.from_json(obj)

    async def delete(self, sandbox_id: str) -> None:
        await self._call(
            "DELETE", f"/v1/sandboxes/{sandbox_id}", None, action="delete the sandbox", retry=False
        )

    async def set_timeout(self, sandbox_id: str, seconds: int) -> None:
        await self._call(
            "PUT",
            f"/v1/sandboxes/{sandbox_id}/timeout",
            {"timeout_seconds": int(seconds)},
            action="extend the sandbox's timeout",
        )

    async def refresh_token(self, sandbox_id: str) -> tuple[str, datetime | None]:
        obj = await self._call(
            "POST", f"/v1/sandboxes/{sandbox_id}/token/refresh", None, action="refresh the sandbox token"
        )
        token = obj.get("auth_token")
        if not isinstance(token, str) or not token:
            raise ServerUnavailable("HopX's token refresh answer had no auth_token", "Restart the kernel.")
        return token, parse_time(obj.get("token_expires_at"))

    async def resume(self, sandbox_id: str) -> None:
        await self._call("POST", f"/v1/sandboxes/{sandbox_id}/resume", None, action="resume the sandbox")

    def close(self) -> None:
        if self._owns_connector:
            self._http.close()
