"""Helpers for the local sandbox server tests: HTTP calls and WebSocket executions."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
from websockets.asyncio.client import connect

from hopx_kernel import frames

TIMEOUT = 30.0


def run(coro):
    """Run a coroutine to completion (the tests are synchronous)."""
    return asyncio.run(coro)


def create(server, **body: Any) -> dict:
    """Create a sandbox over the control plane; returns the sandbox object."""
    body.setdefault("template_name", "code-interpreter")
    r = httpx.post(
        f"{server.base_url}/v1/sandboxes", json=body, headers={"X-API-Key": server.api_key}, timeout=TIMEOUT
    )
    assert r.status_code == 201, r.text
    return r.json()


def delete(server, sandbox: dict) -> None:
    """End a sandbox (ignores one that is already gone)."""
    httpx.delete(
        f"{server.base_url}/v1/sandboxes/{sandbox['id']}",
        headers={"X-API-Key": server.api_key},
        timeout=TIMEOUT,
    )


def agent(server, sandbox: dict, method: str, path: str, **kw) -> httpx.Response:
    """An agent-plane HTTP call with the sandbox's bearer token."""
    headers = {"Authorization": f"Bearer {sandbox['auth_token']}", **kw.pop("headers", {})}
    return httpx.request(method, f"{server.base_url}{path}", headers=headers, timeout=TIMEOUT, **kw)


def ws_headers(sandbox: dict) -> dict:
    return {"Authorization": f"Bearer {sandbox['auth_token']}"}


def open_stream(server, sandbox: dict, **options: Any) -> connect:
    """Open ``/execute/stream`` with the sandbox's token, uncompressed (use with
    ``async with`` or ``await``); ``options`` go to ``websockets`` ``connect``."""
    options.setdefault("open_timeout", TIMEOUT)
    return connect(
        f"{server.ws_url}/execute/stream", additional_headers=ws_headers(sandbox), compression=None, **options
    )


@asynccontextmanager
async def execute_stream(
    server, sandbox: dict, code: str, *, max_size: int | None = 2**20, **fields: Any
) -> AsyncIterator[Any]:
    """Open ``/execute/stream``, send one execute frame (``code`` plus exactly ``fields``,
    so pass ``extensions=1`` to ask for [ext] frames) and yield the open socket."""
    async with open_stream(server, sandbox, max_size=max_size) as ws:
        await ws.send(json.dumps({"type": "execute", "code": code, **fields}))
        yield ws


async def collect(ws, limit: float = TIMEOUT) -> list[dict]:
    """Read frames until ``complete`` (inclusive), checking each one parses."""
    out = []
    async with asyncio.timeout(limit):
        async for raw in ws:
            frame = frames.parse_agent_frame(raw)
            assert frame is not None or not raw.strip(), raw
            obj = json.loads(raw)
            out.append(obj)
            if obj["type"] == "complete":
                break
    return out


async def read_stdout(ws, expected: str, limit: float = TIMEOUT) -> None:
    """Read ``stdout`` frames until their text is ``expected``: stream frames are not
    line-aligned, so ``print('go')`` may arrive as ``go`` and ``\\n`` (the kernel flushed
    between the two writes, as a loaded machine makes it do)."""
    got = ""
    async with asyncio.timeout(limit):
        while got != expected:
            obj = json.loads(await ws.recv())
            assert obj["type"] == "stdout" and expected.startswith(got + obj["data"]), (got, obj)
            got += obj["data"]


async def stream(server, sandbox: dict, code: str, **fields: Any) -> list[dict]:
    """Run ``code`` over ``/execute/stream``; returns every frame up to ``complete``.

    Asks for [ext] frames (``"extensions": 1``) unless ``extensions=None`` is passed,
    which sends the frame exactly as an official SDK does.
    """
    fields.setdefault("extensions", 1)
    if fields["extensions"] is None:
        del fields["extensions"]
    async with execute_stream(server, sandbox, code, **fields) as ws:
        return await collect(ws)


def stream_sync(server, sandbox: dict, code: str, **fields: Any) -> list[dict]:
    return run(stream(server, sandbox, code, **fields))


def text(frames_: list[dict], name: str = "stdout") -> str:
    """The concatenated stream text of one kind."""
    return "".join(f["data"] for f in frames_ if f["type"] == name)


def of_type(frames_: list[dict], kind: str) -> list[dict]:
    return [f for f in frames_ if f["type"] == kind]
