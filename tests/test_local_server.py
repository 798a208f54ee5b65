"""The LocalServer handle against real ``hopx-kernel serve`` processes, and ``--host ::1``."""

from __future__ import annotations

import asyncio
import socket
import sys
import tempfile
from pathlib import Path

import pytest

from hopx_kernel.agent import AgentClient
from hopx_kernel.controlplane import ControlPlane
from hopx_kernel.errors import Unreachable
from hopx_kernel.frames import Execute, Stream
from hopx_kernel.local_server import LocalServer


def test_the_ready_line_is_read_once_and_stop_removes_the_folder():
    root = tempfile.mkdtemp(prefix="hopx-local-")
    server = LocalServer.start(["--root", root, "--pool-size", "0"], root=root)
    try:
        base_url, api_key = server.ready()
        assert base_url.startswith("http://127.0.0.1:") and api_key
        assert server.ready() == (base_url, api_key)  # kept: the server prints it only once
        assert (server.base_url, server.api_key) == (base_url, api_key)
        assert server.returncode is None
    finally:
        status = server.stop()
    assert status == 0 and server.returncode == 0
    assert not Path(root).exists()


def test_a_server_that_exits_without_a_ready_line_is_one_readable_error():
    server = LocalServer.start(command=[sys.executable, "-c", "import sys; sys.exit(3)"])
    with pytest.raises(Unreachable, match=r"failed to start \(exit status 3\)"):
        server.ready(timeout=30)


def test_a_server_that_stays_silent_is_stopped_after_the_timeout():
    silent = [sys.executable, "-c", "import time; time.sleep(60)"]
    server = LocalServer.start(command=silent)
    with pytest.raises(Unreachable, match="did not start within 0 s"):
        server.ready(timeout=0.2)
    assert server.returncode is not None


def _has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


@pytest.mark.skipif(not _has_ipv6_loopback(), reason="this machine has no IPv6 loopback")
def test_host_ipv6_loopback_advertises_where_it_listens_and_runs_a_cell():
    server = LocalServer.start(["--host", "::1", "--pool-size", "1"])
    try:
        base_url, api_key = server.ready()
        assert base_url.startswith("http://[::1]:")
        assert asyncio.run(_run_cell(base_url, api_key)) == "6\n"
    finally:
        server.stop()


async def _run_cell(base_url: str, api_key: str) -> str:
    control = ControlPlane(base_url, api_key)
    info = await control.create("code-interpreter")
    assert info.public_host == base_url  # public_host is usable: the cell runs on it
    agent = AgentClient(info.public_host, lambda: info.auth_token or "")
    try:
        await agent.health()
        execution = await agent.open_execution(Execute(code="print(2 * 3)"))
        out = ""
        async for batch in execution.batches():
            out += "".join(f.data for f in batch if isinstance(f, Stream))
        await execution.close()
        await control.delete(info.id)
        return out
    finally:
        agent.close()
        control.close()
