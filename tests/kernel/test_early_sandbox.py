"""Cloud mode creates the sandbox while the kernel process imports ipykernel
(hopx_kernel/early_sandbox.py): what that speed must not cost. Against a real
`hopx-kernel serve`: no sandbox is left behind when the kernel fails or shuts down before
it used the early one, and the first cell still keeps its order with the kernel channel."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from hopx_kernel import early_sandbox
from hopx_kernel.config import from_env
from hopx_kernel.local_server import LocalServer
from hopx_kernel.session import SandboxSession

from ..support.kernels import execute, running_kernel
from ..support.serve import Serve
from ..support.widgets import THREAD_UPDATE_CELL, expect_thread_update, run, send_comm, widget_id

pytest.importorskip("ipywidgets")


class LoggedServe(Serve):
    """`hopx-kernel serve` logging each sandbox created and ended into a file."""

    def __init__(self, log: Path, *args: str) -> None:
        self.log = log
        with open(log, "wb") as out:
            self.server = LocalServer.start(
                ["--log-level", "info", *args],
                command=[sys.executable, "-m", "hopx_kernel", "serve"],
                stderr=out,
            )
        self.proc = self.server.proc
        self.base_url, self.api_key = self.server.ready()

    def created_and_ended(self) -> tuple[set[str], set[str]]:
        text = self.log.read_text()
        return set(re.findall(r"sandbox (\S+) created", text)), set(re.findall(r"sandbox (\S+) ended", text))

    def live_sandboxes(self) -> list[dict]:
        status, body = self.call("GET", "/v1/sandboxes")
        assert status == 200, body
        return [s for s in body["data"] if s.get("status") not in ("deleted", "killed")]


@pytest.fixture
def serve(tmp_path):
    server = LoggedServe(tmp_path / "serve.log")
    yield server
    server.stop()


def test_a_kernel_whose_start_fails_after_the_early_create_deletes_the_sandbox(serve, tmp_path):
    bad = tmp_path / "connection.json"
    bad.write_text("{not json")  # ipykernel fails after launch() began the create
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPX_")} | serve.env()
    done = subprocess.run(
        [sys.executable, "-m", "hopx_kernel", "-f", str(bad)], env=env, capture_output=True, timeout=120
    )
    assert done.returncode != 0
    assert b"Failed to load connection file" in done.stderr
    assert serve.api_key.encode() not in done.stdout + done.stderr
    created, ended = serve.created_and_ended()
    assert len(created) == 1, serve.log.read_text()  # the early create did happen
    assert created <= ended
    assert serve.live_sandboxes() == []


def test_a_shutdown_while_the_early_sandbox_is_made_leaves_none(serve):
    config = from_env(serve.env())

    async def start_and_shut_down() -> None:
        early_sandbox.begin(config)
        session = SandboxSession(config)
        session.start()
        await asyncio.sleep(0)  # provisioning now waits for the early sandbox
        await session.shutdown()

    early_sandbox._reset_for_tests()
    try:
        asyncio.run(start_and_shut_down())
        early_sandbox.discard()  # what kernelapp.launch does at process end
    finally:
        early_sandbox._reset_for_tests()
    created, ended = serve.created_and_ended()
    assert len(created) == 1, serve.log.read_text()
    assert created <= ended
    assert serve.live_sandboxes() == []


def test_the_early_sandbox_is_the_kernels_and_is_deleted_at_shutdown(serve):
    with running_kernel(serve.env()) as (km, kc):
        assert execute(kc, "print(6 * 7)").stream() == "42\n"
        assert len(serve.live_sandboxes()) == 1
    created, ended = serve.created_and_ended()
    assert len(created) == 1  # the session used the early one, it made no other
    assert created <= ended
    assert serve.live_sandboxes() == []


def test_the_first_cell_keeps_its_order_with_the_early_kernel_channel(serve):
    with running_kernel(serve.env()) as (km, kc):
        reply, msgs = run(kc, THREAD_UPDATE_CELL)  # the kernel's first cell
        assert reply["status"] == "ok", reply
        bar = widget_id(msgs, "IntProgressModel")
        # the frontend's change goes over the channel, the thread's update comes back on it
        expect_thread_update(kc, bar)
        # a frontend change sent just before a cell reaches the sandbox before that cell runs
        send_comm(kc, bar, {"method": "update", "state": {"value": 3}, "buffer_paths": []})
        assert execute(kc, "print(bar.value)").stream() == "3\n"


def test_an_early_sandbox_whose_agent_never_answers_is_deleted_and_the_cell_says_so(tmp_path):
    # the first cell's socket opens while the early thread asks /health: both fail here
    with socket.socket() as dead:
        dead.bind(("127.0.0.1", 0))  # bound, never listening: every connection is refused
        agent = f"http://127.0.0.1:{dead.getsockname()[1]}"
        serve = LoggedServe(tmp_path / "serve.log", "--public-url", agent)
        try:
            with running_kernel(serve.env()) as (_, kc):
                cell = execute(kc, "print('never')", timeout=120)
                assert cell.status == "error" and cell.stream() == ""
                assert "never became healthy" in cell.reply["evalue"]
                assert len(cell.reply["evalue"].splitlines()) == 1
            created, ended = serve.created_and_ended()
            assert len(created) == 1, serve.log.read_text()
            assert created <= ended
            assert serve.live_sandboxes() == []
        finally:
            serve.stop()
