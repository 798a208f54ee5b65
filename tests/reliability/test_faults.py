"""Faults between the kernel and its sandbox: each gives one clear error, keeps every output
that arrived before it (in order), marks the cell failed, and leaves the kernel usable.

Cloud mode against ``hopx-kernel serve --public-url <proxy>``: the agent path runs through
a TCP proxy the test can cut or stall. The local server being killed is covered by
tests/kernel/test_lifecycle.py; a 410 at the start of a cell by tests/kernel/test_cloud_mode.py.
"""

from __future__ import annotations

import importlib.util
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.error import HTTPError
from urllib.request import Request, urlopen

import pytest

from ..support.kernels import execute
from ..support.reliability import cloud_env, kernel, numbered_lines, sandbox_id

#: Prints ``line 1`` … ``line n`` one at a time, each flushed.
LINES = "import time, sys\nfor i in range(1, {n} + 1):\n    print(f'line {{i}}', flush=True)\n    time.sleep({pause})\n"


def assert_prefix_in_order(cell, at_least: int) -> list[int]:
    got = numbered_lines(cell.stream("stdout"))
    assert got == list(range(1, len(got) + 1)), f"lines lost or out of order: {got}"
    assert len(got) >= at_least
    return got


def only_error(cell) -> dict:
    errors = cell.of("error")
    assert len(errors) == 1, errors
    assert cell.status == "error"
    return errors[0]


def test_sandbox_kernel_dies_mid_cell(proxied_server):
    with kernel(cloud_env(proxied_server)) as (_, kc):
        assert execute(kc, "state = 41").status == "ok"
        first = sandbox_id(kc)
        # the crash comes a moment after the output, as real ones do: bytes flushed
        # microseconds before a SIGKILL can still sit in the dying process's socket queue,
        # and no one can deliver what never left the process
        cell = execute(
            kc,
            LINES.format(n=5, pause=0)
            + "time.sleep(0.3)\nimport os, signal\nos.kill(os.getpid(), signal.SIGKILL)",
        )
        assert_prefix_in_order(cell, 5)
        error = only_error(cell)
        assert error["ename"] == "SandboxDied"
        assert error["evalue"] == (
            "the sandbox's Python process died (killed by signal 9 (SIGKILL)); its state is lost. "
            "The next cell runs in a new sandbox; variables and imports from before are gone."
        )
        after = execute(kc, "print('state' in dir())")
        assert after.status == "ok" and after.stream() == "False\n"
        assert sandbox_id(kc) != first


def test_socket_drop_mid_stream_keeps_what_arrived(proxied_server):
    proxy = proxied_server.proxy
    with kernel(cloud_env(proxied_server)) as (_, kc):
        assert execute(kc, "kept = 1").status == "ok"
        cut = threading.Event()

        def on_output(cell):
            if not cut.is_set() and 20 in numbered_lines(cell.stream("stdout")):
                cut.set()
                proxy.cut()

        cell = execute(kc, LINES.format(n=2000, pause=0.01), on_output=on_output, timeout=60)
        assert cut.is_set()
        got = assert_prefix_in_order(cell, 20)
        assert len(got) < 2000
        error = only_error(cell)
        assert error["ename"] == "SandboxDisconnected"
        assert error["evalue"] == (
            "The connection to the sandbox dropped before the cell finished (connection lost); "
            "the output above is all that arrived. Run the cell again: the next cell reconnects."
        )
        after = execute(kc, "print(kept)")  # same sandbox, state kept
        assert after.status == "ok" and after.stream() == "1\n"


def test_stalled_agent_ends_the_cell_but_a_quiet_cell_is_fine(proxied_server):
    proxy = proxied_server.proxy
    # a pong may be late on a loaded machine: 2 s of timeout, and a cell quiet for 5 s
    env = cloud_env(proxied_server, HOPX_PING_INTERVAL="0.5", HOPX_PING_TIMEOUT="2")
    with kernel(env) as (_, kc):
        quiet = execute(kc, "import time\ntime.sleep(5)\nprint('quiet ok')", timeout=30)
        assert quiet.status == "ok" and quiet.stream() == "quiet ok\n"
        stalled = threading.Event()

        def on_output(cell):
            if not stalled.is_set() and 10 in numbered_lines(cell.stream("stdout")):
                stalled.set()
                proxy.stall()

        try:
            cell = execute(kc, LINES.format(n=600, pause=0.02), on_output=on_output, timeout=30)
        finally:
            proxy.resume()
        assert stalled.is_set()
        got = assert_prefix_in_order(cell, 10)
        assert len(got) < 600
        error = only_error(cell)
        assert error["ename"] == "SandboxStalled"
        assert error["evalue"] == (
            "The sandbox stopped answering (no reply to keepalive pings); the cell's output above "
            "is all that arrived. Run the cell again; if it keeps happening, check your network "
            "or restart the kernel."
        )
        after = execute(kc, "print('after')")
        assert after.status == "ok" and after.stream() == "after\n"


def test_token_expiry_mid_cell_does_not_cut_it(proxied_server):
    # the server's tokens live 3 s; this cell runs across an expiry, later cells refresh
    with kernel(cloud_env(proxied_server)) as (_, kc):
        cell = execute(kc, LINES.format(n=8, pause=0.5), timeout=30)
        assert cell.status == "ok" and numbered_lines(cell.stream()) == list(range(1, 9))
        for i in range(3):
            after = execute(kc, f"print({i})")
            assert after.status == "ok" and after.stream() == f"{i}\n"


def test_sandbox_expiry_mid_cell_is_explained_and_the_next_cell_works(proxied_server):
    with kernel(cloud_env(proxied_server)) as (_, kc):
        first = sandbox_id(kc)
        # HOPX_SANDBOX_TIMEOUT is at least 60 s: shorten this sandbox's life from outside
        req = Request(
            f"{proxied_server.base_url}/v1/sandboxes/{first}/timeout",
            method="PUT",
            data=json.dumps({"timeout_seconds": 3}).encode(),
            headers={"X-API-Key": proxied_server.api_key, "Content-Type": "application/json"},
        )
        with urlopen(req, timeout=10) as resp:
            assert resp.status == 200
        cell = execute(kc, LINES.format(n=200, pause=0.05), timeout=30)
        assert_prefix_in_order(cell, 1)
        error = only_error(cell)
        assert error["ename"] == "SandboxExpired"
        assert error["evalue"] == (
            f"sandbox {first} expired after 3 s; create a new one. "
            "The next cell runs in a new sandbox; variables and imports from before are gone."
        )
        after = execute(kc, "print('new')")
        assert after.status == "ok" and after.stream() == "new\n"
        assert sandbox_id(kc) != first


class FaultFront:
    """An HTTP front for the control plane that answers ``status`` to the first ``fail``
    sandbox creations, then forwards everything to the real server; with ``hold``, each
    creation waits until :attr:`release` is set (:attr:`holding` says one is waiting)."""

    def __init__(
        self, target: str, status: int, fail: int, retry_after: float | None = None, hold: bool = False
    ):
        self.target, self.status, self.fail, self.retry_after = target, status, fail, retry_after
        self.creates = 0
        self.holding, self.release = threading.Event(), threading.Event()
        self.held_at = 0.0
        if not hold:
            self.release.set()
        front = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _forward(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else None
                if self.command == "POST" and self.path.rstrip("/") == "/v1/sandboxes":
                    front.creates += 1
                    front.held_at = time.monotonic()
                    front.holding.set()
                    front.release.wait(60)
                    if front.creates <= front.fail:
                        details = {"retry_after_seconds": front.retry_after} if front.retry_after else {}
                        payload = json.dumps(
                            {"error": {"message": "injected fault", "code": "FAULT", "details": details}}
                        ).encode()
                        self.send_response(front.status)
                        self.send_header("Content-Type", "application/json")
                        self.send_header("Content-Length", str(len(payload)))
                        self.end_headers()
                        self.wfile.write(payload)
                        return
                headers = {
                    k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length")
                }
                req = Request(front.target + self.path, data=body, method=self.command, headers=headers)
                try:
                    with urlopen(req, timeout=30) as resp:
                        status, payload = resp.status, resp.read()
                except HTTPError as err:
                    status, payload = err.code, err.read()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = _forward

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self.thread.start()

    def close(self):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("status", [503, 429])
def test_control_plane_fault_is_retried_with_backoff(proxied_server, status):
    front = FaultFront(proxied_server.base_url, status, fail=2, retry_after=0.2)
    try:
        with kernel(cloud_env(proxied_server, base_url=front.url)) as (_, kc):
            cell = execute(kc, "print('made it')")
            assert cell.status == "ok" and cell.stream() == "made it\n"
            assert front.creates == 3  # two refused, the third retry succeeded
    finally:
        front.close()


@pytest.mark.parametrize(
    "status, ename, text",
    [
        (503, "HopxServerError", "injected fault"),
        (429, "HopxRateLimited", "injected fault"),
    ],
)
def test_control_plane_that_keeps_refusing_is_one_clear_error(proxied_server, status, ename, text):
    front = FaultFront(proxied_server.base_url, status, fail=4, retry_after=0.2)
    try:
        with kernel(cloud_env(proxied_server, base_url=front.url)) as (_, kc):
            cell = execute(kc, "print('never')", timeout=60)
            error = only_error(cell)
            assert error["ename"] == ename
            assert text in error["evalue"] and "(after 4 attempts)" in error["evalue"]
            assert front.creates == 4  # the first try and 3 retries
            after = execute(kc, "print('later')")  # the front now forwards: the kernel recovers
            assert after.status == "ok" and after.stream() == "later\n"
    finally:
        front.close()


def features(kc) -> list[str]:
    return kc.kernel_info(reply=True, timeout=10)["content"]["supported_features"]


def test_kernel_info_does_not_wait_for_a_slow_create(proxied_server):
    # a frontend's start (kernel_info, then jupyter_client's 0.2 s of IOPub quiet) runs
    # while the sandbox is created; the debugger is offered once the sandbox is known
    front = FaultFront(proxied_server.base_url, 503, fail=0, hold=True)
    try:
        with kernel(cloud_env(proxied_server, base_url=front.url)) as (_, kc):
            # the kernel is ready (it answered kernel_info) while its create is held: it used
            # to wait up to 10 s for the sandbox, holding the frontend's start behind it
            ready_at = time.monotonic()
            assert front.holding.wait(30)  # the create did go out, at process start
            assert ready_at - front.held_at < 5.0
            assert features(kc) == []  # no sandbox yet: nothing known to offer
            front.release.set()
            assert execute(kc, "print('made it')").stream() == "made it\n"
            assert features(kc) == (["debugger"] if importlib.util.find_spec("debugpy") else [])
            assert front.creates == 1
    finally:
        front.close()
