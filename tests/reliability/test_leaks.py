"""Start/stop cycles and SIGKILLed kernels leave no process, sandbox folder or port behind."""

from __future__ import annotations

import os
import signal
import tempfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import psutil

from ..support.kernels import execute, family, start_kernel, stop_kernel, wait_gone
from ..support.local_server import KERNEL_MARK, start_server
from ..support.reliability import wait_for

CLOUD_CYCLES = 50
EMBEDDED_CYCLES = 4
KILLED = 10
PARALLEL = 4


def listening_ports(procs) -> set[int]:
    ports = set()
    for p in procs:
        try:
            ports |= {c.laddr.port for c in p.net_connections(kind="inet") if c.status == psutil.CONN_LISTEN}
        except psutil.Error:
            pass
    return ports


def open_ports() -> set[int]:
    """Ports listened on by this test run's processes (or by a process we cannot name).

    A port number a stopped kernel freed may be taken at once by a process of another test
    run on the same machine (another checkout's pytest): that is not a leak of ours. Ours
    are pytest's descendants and anything naming this run's private TMPDIR in its command
    line (a server's --root, a kernel's connection file), even once orphaned."""
    descendants = {p.pid for p in psutil.Process().children(recursive=True)}
    run_tmp = tempfile.gettempdir()

    def ours(pid: int | None) -> bool:
        if pid is None or pid in descendants:
            return True
        try:
            return run_tmp in " ".join(psutil.Process(pid).cmdline())
        except psutil.Error:
            return True  # gone or hidden: cannot clear it

    return {
        c.laddr.port
        for c in psutil.net_connections(kind="inet")
        if c.status == psutil.CONN_LISTEN and ours(c.pid)
    }


def sandbox_kernels(server) -> list[psutil.Process]:
    return [
        p
        for p in psutil.Process(server.proc.pid).children(recursive=True)
        if KERNEL_MARK in " ".join(p.cmdline())
    ]


def folders() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("hopx-local-*"))


def cycle(env: dict | None) -> tuple[set[int], list[psutil.Process]]:
    km, kc = start_kernel(env)
    try:
        cell = execute(kc, "print('up')")
        assert cell.stream() == "up\n", (cell.reply, cell.outputs)
        procs = family(km.provisioner.process.pid)
        ports = listening_ports(procs)
    finally:
        stop_kernel(km, kc)
    return ports, procs


def test_fifty_cloud_cycles_and_a_few_embedded_leave_nothing(tmp_path):
    server = start_server("--root", str(tmp_path / "root"))
    try:
        env = {"HOPX_API_KEY": server.api_key, "HOPX_BASE_URL": server.base_url}
        warm = len(sandbox_kernels(server))
        before_folders = folders()
        with ThreadPoolExecutor(PARALLEL) as pool:
            results = list(pool.map(cycle, [env] * CLOUD_CYCLES + [None] * EMBEDDED_CYCLES))
        procs = [p for _, ps in results for p in ps]
        assert wait_gone(procs, timeout=20) == []
        # the shared server's warm-pool kernels may bind a port a stopped kernel freed
        reused = listening_ports(family(server.proc.pid))
        still_open = set().union(*(ports for ports, _ in results)) & (open_ports() - reused)
        holders = {
            c.laddr.port: c.pid for c in psutil.net_connections(kind="inet") if c.laddr.port in still_open
        }
        assert still_open == set(), {
            port: (pid, psutil.Process(pid).cmdline() if pid else None) for port, pid in holders.items()
        }
        listing = httpx.get(f"{server.base_url}/v1/sandboxes", headers={"X-API-Key": server.api_key}).json()
        assert listing["data"] == []  # every cloud kernel deleted its sandbox
        # the warm pool refills for every concurrent create, so after a burst of PARALLEL
        # creates up to PARALLEL idle kernels may stay warm: bounded, not one per cycle
        wait_for(lambda: len(sandbox_kernels(server)) <= warm + PARALLEL, 20, "sandbox kernels to end")
        # the only sandbox folders left are the warm pool's, one per idle kernel
        # (each has its /tmp and home folders beside it: <id>.tmp, <id>.home)
        left = [p for p in (tmp_path / "root").iterdir() if p.name != ".kernels"]
        workspaces = [p for p in left if not p.name.endswith((".tmp", ".home"))]
        assert len(workspaces) == len(sandbox_kernels(server))
        assert sorted(p.name for p in left) == sorted(
            w.name + suffix for w in workspaces for suffix in ("", ".tmp", ".home")
        )
        assert folders() <= before_folders  # embedded servers removed theirs
    finally:
        assert server.stop() == 0


def killed(_: int) -> tuple[set[int], list[psutil.Process]]:
    km, kc = start_kernel()
    try:
        cell = execute(kc, "print('up')")
        assert cell.stream() == "up\n", (cell.reply, cell.outputs)
        procs = family(km.provisioner.process.pid)
        ports = listening_ports(procs)
        os.kill(km.provisioner.process.pid, signal.SIGKILL)
    finally:
        kc.stop_channels()
    km.cleanup_resources()
    return ports, procs


def test_sigkilled_kernels_take_everything_with_them():
    before_folders = folders()
    with ThreadPoolExecutor(PARALLEL) as pool:
        results = list(pool.map(killed, range(KILLED)))
    procs = [p for _, ps in results for p in ps]
    assert len(procs) >= 3 * KILLED  # kernel, its server, the sandbox's IPython (+ the warm pool's)
    assert wait_gone(procs, timeout=30) == []
    assert set().union(*(ports for ports, _ in results)) & open_ports() == set()
    wait_for(lambda: folders() <= before_folders or None, 15, "server folders to be removed")
