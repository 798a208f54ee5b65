"""Dedicated servers: secret scrubbing, a dying kernel, parent death, SIGTERM cleanup."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import psutil
import pytest

from ..support.local_server import KERNEL_MARK, REPO, start_server
from ..support.server_helpers import agent, create, of_type, stream_sync, text


def _kernels_of(server_pid: int) -> list[psutil.Process]:
    try:
        children = psutil.Process(server_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [p for p in children if KERNEL_MARK in " ".join(p.cmdline())]


def _wait_gone(pids: list[int], limit: float = 15.0) -> list[int]:
    deadline = time.monotonic() + limit
    alive = pids
    while alive and time.monotonic() < deadline:
        alive = [
            p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE
        ]
        if alive:
            time.sleep(0.1)  # bounded poll of process exit
    return alive


def test_secrets_are_not_visible_and_sigterm_cleans_up(tmp_path):
    env = {
        **os.environ,
        "HOPX_API_KEY": "hopx_live_x.y",
        "MY_SECRET_TOKEN": "t0k",
        "SOME_PASSWORD": "pw",
        "JPY_SESSION_NAME": "s",
        "VISIBLE_SETTING": "ok",
    }
    root = tmp_path / "root"
    server = start_server("--root", str(root), "--pool-size", "1", env=env)
    try:
        sb = create(server)
        frames_ = stream_sync(
            server,
            sb,
            "import os\nprint(sorted(k for k in os.environ if "
            "any(w in k.upper() for w in ('HOPX', 'TOKEN', 'KEY', 'SECRET', "
            "'PASSWORD', 'JPY_'))))\nprint(os.environ.get('VISIBLE_SETTING'))",
        )
        assert text(frames_) == "[]\nNone\n"  # an allowlist: other variables stay out too
        bash = stream_sync(
            server, sb, "env | cut -d= -f1 | grep -ci -e hopx -e token -e secret || true", language="bash"
        )
        assert text(bash) == "0\n"
        log = server.stderr_path.read_text()
        assert server.api_key not in log and sb["auth_token"] not in log
        kernels = [p.pid for p in _kernels_of(server.proc.pid)]
        assert kernels  # the sandbox's kernel and the warm pool's
        assert (root / sb["id"]).is_dir()
    finally:
        code = server.stop()
    assert code == 0
    assert _wait_gone(kernels) == []
    assert list(root.iterdir()) == []


def test_dead_kernel_reports_sandbox_died(local_server):
    sb = create(local_server)
    frames_ = stream_sync(local_server, sb, "import os, signal\nos.kill(os.getpid(), signal.SIGKILL)")
    error = of_type(frames_, "error")[0]
    assert error["code"] == "SANDBOX_DIED"
    assert "killed by signal 9" in error["error"] and "state is lost" in error["error"]
    assert of_type(frames_, "result")[0]["exit_code"] != 0
    assert frames_[-1] == {"type": "complete", "success": False}
    r = agent(local_server, sb, "POST", "/execute", json={"code": "1"})
    assert r.status_code == 410 and "died" in r.json()["error"]


def test_parent_death_stops_the_server():
    parent = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=subprocess.PIPE)
    server = start_server(parent_pid=parent.pid)
    try:
        create(server)
        kernels = [p.pid for p in _kernels_of(server.proc.pid)]
        parent.kill()
        parent.wait(10)
        assert server.proc.wait(20) == 0
        assert _wait_gone(kernels) == []  # folders: checked by the session leak check
    finally:
        if server.proc.poll() is None:
            server.stop()


def test_refuses_non_loopback_host():
    r = subprocess.run(
        [sys.executable, "-m", "hopx_kernel.server", "--host", "0.0.0.0"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=str(REPO),
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert r.returncode == 2 and "not a loopback address" in r.stderr and r.stdout == ""


@pytest.mark.parametrize("flag", ["--memory-limit-mb", "--max-procs"])
def test_limit_flags_parse(flag):
    from hopx_kernel.server.main import build_parser

    args = build_parser().parse_args([flag, "512"])
    assert (args.memory_limit_mb or args.max_procs) == 512


def test_no_pool_refill_keeps_one_kernel_per_sandbox_and_starts_more_on_demand(tmp_path):
    """Embedded mode (--no-pool-refill): the kernel started ahead serves the first sandbox and
    no spare replaces it (~55 MB saved); a second sandbox still gets a kernel, on demand."""
    server = start_server("--root", str(tmp_path / "root"), "--pool-size", "1", "--no-pool-refill")
    try:
        first = create(server)
        assert text(stream_sync(server, first, "print(1)")) == "1\n"
        # the server answers create only once the kernel is taken, so a refill would have
        # started by now; stream_sync's whole round trip gives it time to show up
        assert len(_kernels_of(server.proc.pid)) == 1
        second = create(server)
        assert text(stream_sync(server, second, "print(2)")) == "2\n"
        assert len(_kernels_of(server.proc.pid)) == 2
    finally:
        assert server.stop() == 0
