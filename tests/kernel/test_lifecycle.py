"""Interrupt, restart, shutdown and crashes: state where users expect it, no process left."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

import psutil
import pytest
from jupyter_client.manager import KernelManager

from ..support.kernels import (
    KERNEL_NAME,
    execute,
    family,
    running_kernel,
    start_kernel,
    stop_kernel,
    wait_gone,
)
from ..support.local_server import KERNEL_MARK
from ..support.ports import connection_file_with_a_taken_port

LOOP = "import time\nprint('running', flush=True)\nwhile True:\n    time.sleep(0.05)"


def _interrupt_when_running(km):
    sent = []

    def on_output(cell):
        # once: a second interrupt (on the KeyboardInterrupt's own output) travels on
        # control in message mode and may land in the next cell
        if "running" in cell.stream() and not sent:
            sent.append(True)
            km.interrupt_kernel()

    return on_output


@pytest.mark.parametrize("mode", ["signal", "message"])
def test_interrupt_stops_the_cell_and_keeps_state(mode):
    with running_kernel() as (km, kc):
        km.kernel_spec.interrupt_mode = mode
        assert execute(kc, "kept = 'still here'").status == "ok"
        cell = execute(kc, LOOP, on_output=_interrupt_when_running(km), timeout=60)
        assert cell.status == "error"
        assert cell.reply["ename"] == "KeyboardInterrupt"
        assert execute(kc, "print(kept)").stream() == "still here\n"


def _local_server(kernel_pid: int) -> psutil.Process:
    return next(
        p
        for p in family(kernel_pid)[1:]
        if "hopx_kernel.server" in " ".join(p.cmdline()) and KERNEL_MARK not in " ".join(p.cmdline())
    )


def test_restart_gives_a_fresh_sandbox_on_the_same_local_server():
    km, kc = start_kernel()
    server = _local_server(km.provisioner.pid)
    try:
        assert execute(kc, "x = 1").status == "ok"
        for _ in range(2):
            km.restart_kernel(now=False)
            kc.wait_for_ready(timeout=60)
            cell = execute(kc, "print('x' in dir())")
            assert cell.stream() == "False\n"  # a fresh sandbox...
            assert server.is_running()  # ...from the server the first kernel started
            assert execute(kc, "x = 1").status == "ok"
        everything = [server, *server.children(recursive=True)]
    finally:
        stop_kernel(km, kc)
    assert wait_gone(everything, timeout=15) == []  # the last kernel ended it


def test_sigkill_after_a_restart_takes_the_handed_over_server_with_it():
    km, kc = start_kernel()
    try:
        server = _local_server(km.provisioner.pid)
        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=60)
        assert execute(kc, "print(1)").status == "ok"
        everything = [server, *server.children(recursive=True)]
        os.kill(km.provisioner.pid, signal.SIGKILL)
        assert wait_gone(everything, timeout=15) == []
    finally:
        kc.stop_channels()
        km.cleanup_resources()


def _sandbox_processes(kernel_pid: int) -> list[psutil.Process]:
    procs = family(kernel_pid)
    assert any("hopx_kernel.server" in " ".join(p.cmdline()) for p in procs[1:]), "no local server found"
    return procs


def test_shutdown_leaves_no_process_behind_and_logs_no_error(tmp_path):
    log = open(tmp_path / "kernel-stderr.txt", "w+")
    km, kc = start_kernel(stderr=log)
    assert execute(kc, "print(1)").status == "ok"
    procs = _sandbox_processes(km.provisioner.pid)
    assert len(procs) >= 3  # kernel, server, the sandbox's IPython kernel
    stop_kernel(km, kc)
    assert wait_gone(procs, timeout=15) == []
    log.seek(0)
    text = log.read()
    log.close()
    # shutdown runs on ipykernel's control thread: nothing may fail there (e.g. a socket
    # of the main loop touched from the control loop)
    assert "Traceback" not in text and "ERROR" not in text, text


def test_sigkill_of_the_kernel_takes_the_sandbox_with_it():
    km, kc = start_kernel()
    try:
        assert execute(kc, "print(1)").status == "ok"
        procs = _sandbox_processes(km.provisioner.pid)
        os.kill(km.provisioner.pid, signal.SIGKILL)
        assert wait_gone(procs, timeout=15) == []
    finally:
        kc.stop_channels()
        km.cleanup_resources()


def test_killed_local_server_is_reported_and_the_next_cell_gets_a_new_sandbox():
    with running_kernel() as (km, kc):
        assert execute(kc, "lost = 1").status == "ok"
        server = next(
            p for p in family(km.provisioner.pid)[1:] if "hopx_kernel.server" in " ".join(p.cmdline())
        )
        inner = server.children(recursive=True)
        server.kill()
        wait_gone([server], timeout=10)
        for p in inner:  # its IPython kernel may outlive it briefly
            try:
                p.kill()
            except psutil.NoSuchProcess:
                pass
        cell = execute(kc, "print('after')")
        assert cell.status == "error"
        assert len(cell.reply["evalue"].splitlines()) == 1
        assert "new sandbox" in cell.reply["evalue"]
        again = execute(kc, "print('lost' in dir())")
        assert again.status == "ok"
        assert again.stream() == "False\n"


def test_kernel_info_answers_before_the_sandbox_is_ready():
    with running_kernel() as (km, kc):
        reply = kc.kernel_info(reply=True, timeout=10)
        info = reply["content"]
        assert info["implementation"] == "hopx-kernel"
        assert info["language_info"]["name"] == "python"


def test_a_kernel_start_writes_nothing_to_stderr(tmp_path):
    # No debugger warnings ("frozen modules ..."), from this kernel's process, the local
    # server or the sandbox's kernel. IPC transport: over TCP ipykernel itself warns that
    # the transport is unencrypted (a local python3 kernel prints that line too).
    log = open(tmp_path / "kernel-stderr.txt", "w+")
    km = KernelManager(kernel_name=KERNEL_NAME, transport="ipc", ip=str(tmp_path / "k"))
    km.start_kernel(env={k: v for k, v in os.environ.items() if not k.startswith("HOPX_")}, stderr=log)
    kc = km.client()
    kc.start_channels()
    try:
        kc.wait_for_ready(timeout=60)  # a kernel_info_request, as every frontend sends
        assert execute(kc, "print(1)").stream() == "1\n"
        log.seek(0)
        text = log.read()  # the start and a first cell; shutdown is another test's business
    finally:
        stop_kernel(km, kc)
        km.cleanup_resources()
        log.close()
    assert text == ""


def test_a_bad_log_level_is_one_clear_error_not_a_crash():
    with running_kernel({"HOPX_LOG_LEVEL": "verbose"}) as (_, kc):
        cell = execute(kc, "print(1)")
    assert cell.status == "error"
    assert cell.reply["ename"] == "HopxConfigError"
    assert cell.reply["evalue"].startswith("HOPX_LOG_LEVEL='verbose' is not a log level. Use one of DEBUG,")


def test_a_kernel_that_cannot_bind_its_ports_exits_and_takes_its_server_with_it(tmp_path):
    # Another process took a port of the connection file between jupyter_client choosing it
    # and the kernel binding it (kernels starting at once race for ports). A local ipykernel
    # hangs there for ever (its ZMQ context's term() at exit); this kernel must exit, so that
    # jupyter_client sees it died, and the local server it had begun to start must end too.
    before = set(Path(tempfile.gettempdir()).glob("hopx-local-*"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("HOPX_")}
    with connection_file_with_a_taken_port(tmp_path) as connection:
        kernel = subprocess.Popen(
            [sys.executable, "-m", "hopx_kernel", "-f", connection],
            env=env,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _, stderr = kernel.communicate(timeout=60)
        finally:
            kernel.kill()
    assert kernel.returncode == 1
    assert "Address already in use" in stderr, stderr
    # its server (started before ipykernel was imported) was stopped, folder and all
    parent = f"--parent-pid {kernel.pid}"
    assert not [p for p in psutil.process_iter(["cmdline"]) if parent in " ".join(p.info["cmdline"] or [])]
    assert set(Path(tempfile.gettempdir()).glob("hopx-local-*")) <= before
