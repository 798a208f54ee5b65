"""Security of the local server and of the kernel's secrets.

Already covered elsewhere (not repeated): the sandbox's environment has no HOPX/TOKEN/KEY
variable (tests/server/test_lifecycle.py, tests/kernel/test_cloud_mode.py), token routing
and refusal of unknown tokens (tests/server/web/test_http_planes.py::test_agent_plane_routing_by_token),
the Host/Origin guards on HTTP (tests/server/web/test_http_planes.py::test_loopback_guards),
kernel.json 0600 with a secret (tests/test_kernelspec.py).
"""

from __future__ import annotations

import asyncio
import json
import re
import stat

import httpx
import psutil
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from hopx_kernel.server.web.app import ServerState, make_app

from ..support.kernels import execute
from ..support.local_server import KERNEL_MARK, start_server
from ..support.server_helpers import create, delete

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")


def concrete_paths() -> list[str]:
    """Every route of the app as concrete paths (each alternative of a group expanded)."""
    app = make_app(ServerState(api_key="x", registry=None, ctx=None))  # type: ignore[arg-type]
    paths = []
    for rule in app.wildcard_router.rules:
        pattern = rule.matcher.regex.pattern.rstrip("$").replace("/?", "")
        variants = [pattern]
        for group in re.findall(r"\(([^()]*)\)", pattern):
            choices = ["local-000000000000"] if "[" in group else group.split("|")
            variants = [v.replace(f"({group})", c, 1) for v in variants for c in choices]
        paths += variants
    return paths


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    root = tmp_path_factory.mktemp("secroot")
    # no --token: a key on the command line would be visible to `ps` (see the README)
    srv = start_server("--root", str(root), "--log-level", "debug")
    srv.root = root
    yield srv
    assert srv.stop() == 0


def test_routes_were_enumerated():
    paths = concrete_paths()
    assert "/health" in paths and "/execute/stream" in paths and "/files/upload" in paths
    assert "/v1/sandboxes/local-000000000000/token/refresh" in paths and len(paths) >= 20


def test_every_endpoint_but_health_needs_a_credential(server):
    sb = create(server)  # a live sandbox, so unauthenticated calls cannot hit "not found" only
    try:
        open_ = []
        for path in concrete_paths():
            path = path.replace("local-000000000000", sb["id"])
            for method in METHODS:
                r = httpx.request(
                    method,
                    server.base_url + path,
                    timeout=10,
                    json={} if method in ("POST", "PUT", "PATCH") else None,
                )
                if r.status_code < 400:
                    open_.append((method, path, r.status_code))
        assert open_ == [("GET", "/health", 200)]
    finally:
        delete(server, sb)


def test_credentials_are_not_interchangeable(server):
    a, b = create(server), create(server)
    try:
        key = {"X-API-Key": server.api_key}
        bearer = lambda tok: {"Authorization": f"Bearer {tok}"}  # noqa: E731
        # the control-plane key does not open the agent plane
        assert (
            httpx.post(
                f"{server.base_url}/execute", json={"code": "1"}, headers=bearer(server.api_key), timeout=10
            ).status_code
            == 401
        )
        # an agent token does not open the control plane, not even its own sandbox
        for headers in ({"X-API-Key": a["auth_token"]}, bearer(a["auth_token"])):
            assert (
                httpx.get(
                    f"{server.base_url}/v1/sandboxes/{a['id']}", headers=headers, timeout=10
                ).status_code
                == 401
            )
        # a sandbox's token runs code in that sandbox only
        httpx.post(
            f"{server.base_url}/execute",
            json={"code": "secret_b = 7"},
            headers=bearer(b["auth_token"]),
            timeout=30,
        )
        r = httpx.post(
            f"{server.base_url}/execute",
            json={"code": "print('secret_b' in dir())"},
            headers=bearer(a["auth_token"]),
            timeout=30,
        )
        assert r.json()["stdout"] == "False\n"
        assert httpx.get(f"{server.base_url}/v1/sandboxes", headers=key, timeout=10).status_code == 200
    finally:
        delete(server, a)
        delete(server, b)


def test_websocket_refuses_foreign_origin_and_host(server):
    sb = create(server)
    url = server.ws_url + "/execute/stream"
    auth = {"Authorization": f"Bearer {sb['auth_token']}"}

    async def status(headers, **kw) -> int:
        try:
            async with connect(url, additional_headers=headers, open_timeout=10, **kw):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    try:
        assert asyncio.run(status(auth, origin="https://evil.example")) == 403
        upgrade = {
            **auth,
            "Host": "evil.example",
            "Upgrade": "websocket",
            "Connection": "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
        }
        assert httpx.get(url.replace("ws://", "http://"), headers=upgrade, timeout=10).status_code == 403
        assert asyncio.run(status({})) == 401
        assert asyncio.run(status(auth, origin="http://127.0.0.1:8888")) == 101
    finally:
        delete(server, sb)


def test_listens_on_loopback_only_and_token_files_are_private(server):
    sb = create(server)
    try:
        procs = [psutil.Process(server.proc.pid), *psutil.Process(server.proc.pid).children(recursive=True)]
        listening = [
            c for p in procs for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN
        ]
        assert listening and all(c.laddr.ip == "127.0.0.1" for c in listening), listening
        conn_files = list((server.root / ".kernels").glob("*/*.json"))
        assert conn_files  # the kernels' connection files hold their HMAC keys
        for path in conn_files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
        assert stat.S_IMODE((server.root / ".kernels").stat().st_mode) & 0o777 == 0o700
    finally:
        delete(server, sb)


def test_no_secret_in_logs_outputs_messages_or_sandbox_process(server, tmp_path):
    kernel_log = tmp_path / "kernel-stderr.txt"
    env = {"HOPX_API_KEY": server.api_key, "HOPX_BASE_URL": server.base_url, "HOPX_LOG_LEVEL": "DEBUG"}
    tokens: set[str] = set()
    seen: list[str] = []
    with open(kernel_log, "w") as log:
        from ..support.kernels import start_kernel, stop_kernel

        km, kc = start_kernel(env, stderr=log, stdout=log)
        try:
            for code in (
                "print('hi')",
                "%hopx",
                "import os; print(sorted(os.environ))",
                "1/0",
                "%%bash\nenv; cat /proc/self/cmdline",
                "from IPython.display import HTML; HTML('<b>x</b>')",
            ):
                cell = execute(kc, code)
                seen.append(json.dumps([cell.reply, cell.outputs]))
            listing = httpx.get(
                f"{server.base_url}/v1/sandboxes", headers={"X-API-Key": server.api_key}
            ).json()
            tokens |= {s["auth_token"] for s in listing["data"]}
            sandbox_procs = [
                p
                for p in psutil.Process(server.proc.pid).children(recursive=True)
                if KERNEL_MARK in " ".join(p.cmdline())
            ]
            for p in sandbox_procs:
                seen.append(" ".join(p.cmdline()) + json.dumps(p.environ()))
        finally:
            stop_kernel(km, kc)
    assert tokens
    seen.append(kernel_log.read_text())
    seen.append(server.stderr_path.read_text())
    assert "hi" in seen[0]
    everything = "\n".join(seen)
    assert "[hopx-kernel INFO]" in seen[-2]  # the kernel's log was captured, at debug level
    for secret in (server.api_key, *tokens):
        at = everything.find(secret)
        assert at < 0, everything[max(0, at - 300) : at + 100]
