"""Control plane, agent-plane auth and routing, loopback guards, files, expiry."""

from __future__ import annotations

import json
import time

import httpx
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.server_helpers import agent, create, delete, run, stream_sync, text, ws_headers


def _ws_status(server, headers, host: str | None = None) -> int:
    """The HTTP status of a WebSocket upgrade; ``host`` sets the Host header to send."""
    port = int(server.base_url.rsplit(":", 1)[1])
    url = f"ws://{host}:{port}/execute/stream" if host else f"{server.ws_url}/execute/stream"

    async def attempt():
        try:
            async with connect(
                url,
                additional_headers=headers,
                compression=None,
                open_timeout=20,
                host="127.0.0.1",
                port=port,
            ):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    return run(attempt())


def test_control_plane_auth(local_server):
    url = f"{local_server.base_url}/v1/sandboxes"
    for headers in ({}, {"X-API-Key": "wrong"}, {"Authorization": "Bearer wrong"}):
        r = httpx.post(url, json={"template_name": "code-interpreter"}, headers=headers)
        assert r.status_code == 401
        body = r.json()
        assert body["error"]["code"] == body["code"] and "API key" in body["message"]
    r = httpx.get(url, headers={"Authorization": f"Bearer {local_server.api_key}"})
    assert r.status_code == 200 and r.json()["object"] == "list"


def test_sandbox_object_and_control_calls(local_server):
    sb = create(local_server, timeout_seconds=600, env_vars={"FROM_CREATE": "yes"})
    key = {"X-API-Key": local_server.api_key}
    base = f"{local_server.base_url}/v1/sandboxes/{sb['id']}"
    try:
        assert sb["public_host"] == sb["direct_url"] == local_server.base_url
        assert isinstance(sb["organization_id"], int) and sb["region"] == "local"
        assert set(sb["resources"]) == {"vcpu", "memory_mb", "disk_mb"}
        for field in ("created_at", "expires_at", "token_expires_at"):
            assert sb[field].endswith("Z") and len(sb[field].split(".")[1]) == 7
        got = httpx.get(base, headers=key).json()
        assert got["id"] == sb["id"] and got["status"] == "running"
        listed = httpx.get(f"{local_server.base_url}/v1/sandboxes", headers=key).json()
        assert sb["id"] in [s["id"] for s in listed["data"]]
        assert text(stream_sync(local_server, sb, "import os; print(os.environ['FROM_CREATE'])")) == "yes\n"
        r = httpx.put(f"{base}/timeout", json={"timeout_seconds": 900}, headers=key)
        assert r.status_code == 200 and r.json()["timeout_seconds"] == 900
        assert httpx.put(f"{base}/timeout", json={"timeout_seconds": 0}, headers=key).status_code == 400
        fresh = httpx.post(f"{base}/token/refresh", headers=key).json()
        assert fresh["auth_token"] != sb["auth_token"] and fresh["token_expires_at"].endswith("Z")
        assert text(stream_sync(local_server, {"auth_token": fresh["auth_token"]}, "print(1)")) == "1\n"
        assert httpx.post(f"{base}/pause", headers=key).json()["status"] == "paused"
        r = agent(local_server, sb, "POST", "/execute", json={"code": "print(1)"})
        assert r.status_code == 409 and "paused" in r.json()["error"]
        assert httpx.post(f"{base}/resume", headers=key).json()["status"] == "running"
        assert (
            agent(local_server, sb, "POST", "/execute", json={"code": "print(1)"}).json()["stdout"] == "1\n"
        )
        r = httpx.post(f"{local_server.base_url}/v1/sandboxes", headers=key, json={"template_name": "ubuntu"})
        assert r.status_code == 404 and r.json()["code"] == "TEMPLATE_NOT_FOUND"
        assert "code-interpreter" in r.json()["message"]
        assert httpx.get(f"{local_server.base_url}/v1/sandboxes/nope", headers=key).status_code == 404
    finally:
        delete(local_server, sb)
    r = httpx.delete(base, headers=key)
    assert r.status_code == 410 and "deleted" in r.json()["message"]


def test_agent_plane_routing_by_token(local_server):
    a, b = create(local_server), create(local_server)
    try:
        stream_sync(local_server, a, "who = 'a'")
        stream_sync(local_server, b, "who = 'b'")
        assert text(stream_sync(local_server, a, "print(who)")) == "a\n"
        assert text(stream_sync(local_server, b, "print(who)")) == "b\n"
        for headers in (
            {},
            {"Authorization": "Bearer nope"},
            {"Authorization": f"Bearer {local_server.api_key}"},
            {"X-API-Key": local_server.api_key},
        ):
            r = httpx.post(f"{local_server.base_url}/execute", json={"code": "1"}, headers=headers)
            assert r.status_code == 401, headers
            assert r.json()["code"] in ("AUTHENTICATION_REQUIRED", "INVALID_TOKEN")
            assert _ws_status(local_server, headers) == 401
        health = httpx.get(f"{local_server.base_url}/health").json()
        assert health["status"] == "healthy" and health["features"]["stream_extensions"] == 1
    finally:
        delete(local_server, a)
    r = agent(local_server, a, "GET", "/files/list")
    assert r.status_code == 410 and "deleted" in r.json()["error"]
    assert _ws_status(local_server, ws_headers(a)) == 410
    delete(local_server, b)


def test_loopback_guards(local_server):
    sb = create(local_server)
    try:
        headers = {**ws_headers(sb), "Origin": "http://evil.example"}
        assert _ws_status(local_server, headers) == 403
        assert _ws_status(local_server, {**ws_headers(sb), "Origin": "http://localhost:8888"}) == 101
        assert _ws_status(local_server, ws_headers(sb), host="evil.example") == 403
        r = httpx.get(f"{local_server.base_url}/health", headers={"Host": "evil.example"})
        assert r.status_code == 403 and "loopback" in r.json()["error"]
        r = httpx.get(
            f"{local_server.base_url}/v1/sandboxes",
            headers={"Host": "evil.example:80", "X-API-Key": local_server.api_key},
        )
        assert r.status_code == 403
    finally:
        delete(local_server, sb)


def test_expired_sandbox_is_410(local_server):
    sb = create(local_server, timeout_seconds=1)
    url = f"{local_server.base_url}/v1/sandboxes/{sb['id']}"
    deadline = time.monotonic() + 15
    while True:  # bounded poll for the expiry the server schedules
        r = httpx.get(url, headers={"X-API-Key": local_server.api_key})
        if r.status_code != 200 or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    assert r.status_code == 410
    assert r.json()["message"] == f"sandbox {sb['id']} expired after 1 s; create a new one"
    assert agent(local_server, sb, "GET", "/env").status_code == 410


def test_files(local_server):
    sb = create(local_server)
    try:
        r = agent(
            local_server,
            sb,
            "POST",
            "/files/write",
            json={"path": "/workspace/d/x.bin", "content": "AAEC", "encoding": "base64"},
        )
        assert r.json() == {"success": True, "path": "/workspace/d/x.bin", "size": 3}
        assert (
            agent(local_server, sb, "GET", "/files/download", params={"path": "/workspace/d/x.bin"}).content
            == b"\0\1\2"
        )
        r = agent(
            local_server,
            sb,
            "POST",
            "/files/upload",
            files={"file": ("u.txt", b"up")},
            data={"path": "d/u.txt"},
        )
        assert r.status_code == 200, r.text
        listing = agent(local_server, sb, "GET", "/files/list", params={"path": "/workspace/d"})
        names = {f["name"]: f for f in listing.json()["files"]}
        assert set(names) == {"x.bin", "u.txt"} and names["u.txt"]["path"] == "/workspace/d/u.txt"
        assert (
            agent(local_server, sb, "GET", "/files/read", params={"path": "/workspace/d/u.txt"}).json()[
                "content"
            ]
            == "up"
        )
        assert (
            agent(local_server, sb, "GET", "/files/exists", params={"path": "/workspace/d"}).json()["exists"]
            is True
        )
        assert (
            agent(local_server, sb, "DELETE", "/files/remove", params={"path": "/workspace/d"}).json()[
                "success"
            ]
            is True
        )
        assert (
            agent(local_server, sb, "GET", "/files/exists", params={"path": "/workspace/d"}).json()["exists"]
            is False
        )
        r = agent(local_server, sb, "GET", "/files/read", params={"path": "/workspace/none"})
        assert r.status_code == 404 and r.json()["code"] == "FILE_NOT_FOUND"
        for path in ("/etc/passwd", "/workspace/../../etc/passwd", "../x"):
            r = agent(local_server, sb, "GET", "/files/read", params={"path": path})
            assert r.status_code == 403 and r.json()["code"] == "PATH_NOT_ALLOWED", path
        r = agent(
            local_server,
            sb,
            "POST",
            "/files/write",
            content=b"{bad",
            headers={"Content-Type": "application/json"},
        )
        assert r.status_code == 400 and r.json()["code"] == "INVALID_JSON"
        r = agent(local_server, sb, "GET", "/nowhere")
        assert r.status_code == 404 and json.loads(r.text)["code"] == "RESOURCE_NOT_FOUND"
    finally:
        delete(local_server, sb)
