"""Helpers of the attack suite: sandboxes, calls, and the bounds every attack must keep."""

from __future__ import annotations

import time

import httpx
import psutil

from ..support.server_helpers import TIMEOUT, create, delete, stream_sync  # noqa: F401


def agent(server, sandbox: dict, method: str, path: str, timeout: float = TIMEOUT, **kw) -> httpx.Response:
    """An agent-plane HTTP call with the sandbox's bearer token."""
    headers = {"Authorization": f"Bearer {sandbox['auth_token']}", **kw.pop("headers", {})}
    return httpx.request(method, f"{server.base_url}{path}", headers=headers, timeout=timeout, **kw)


def rss_mb(server) -> float:
    """The server process's resident memory in MB."""
    return psutil.Process(server.proc.pid).memory_info().rss / 2**20


def run_py(server, sandbox: dict, code: str) -> dict:
    """Run Python in a sandbox through ``/execute``; asserts it worked, returns the body."""
    r = agent(server, sandbox, "POST", "/execute", json={"code": code, "timeout": 30})
    assert r.status_code == 200 and r.json()["success"], r.text
    return r.json()


def flip_symlink(server, sandbox: dict, outside, prepare: str = "") -> None:
    """Start sandbox code that flips ``link`` between ``inside`` and ``outside`` (a folder
    beyond the sandbox) until a file ``stop`` appears; ``prepare``: code run first."""
    run_py(
        server,
        sandbox,
        "import os, threading, time\n"
        "os.makedirs('inside', exist_ok=True)\n"
        f"{prepare}"
        "def flip():\n"
        "    while not os.path.exists('stop'):\n"
        f"        for t in ('inside', {str(outside)!r}):\n"
        "            try:\n"
        "                os.symlink(t, 'link.tmp'); os.replace('link.tmp', 'link')\n"
        "            except OSError:\n"
        "                pass\n"
        "            time.sleep(0.0005)\n"
        "threading.Thread(target=flip, daemon=True).start()\n",
    )


def answers_quickly(server, sandbox: dict, within: float = 1.0) -> float:
    """Seconds another sandbox takes to answer a file call; asserts under ``within``."""
    started = time.monotonic()
    r = agent(server, sandbox, "GET", "/files/exists", params={"path": "/workspace"}, timeout=within + 5)
    took = time.monotonic() - started
    assert r.status_code == 200, r.text
    assert took < within, f"another sandbox took {took:.2f} s to answer"
    health = httpx.get(f"{server.base_url}/health", timeout=within + 5)
    assert health.status_code == 200
    return took


def one_line_4xx(r: httpx.Response) -> None:
    """A clean client error: 4xx with a one-line message."""
    assert 400 <= r.status_code < 500, (r.status_code, r.text)
    message = r.json().get("error") or r.json().get("message")
    if isinstance(message, dict):
        message = message["message"]
    assert message and "\n" not in message, r.text


def no_traceback_logged(server) -> None:
    log = server.stderr_path.read_text()
    at = log.find("Traceback")
    assert at < 0, log[max(0, at - 300) : at + 2500]
