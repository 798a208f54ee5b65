"""Interrupt, restart, shutdown and crashes: state where users expect it, no process left."""

from __future__ import annotations

import os
import signal

import psutil
import pytest

from .helpers import execute, family, running_kernel, start_kernel, stop_kernel, wait_gone

LOOP = "import time\nprint('running', flush=True)\nwhile True:\n    time.sleep(0.05)"


def _interrupt_when_running(km):
    def on_output(cell):
        if "running" in cell.stream():
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


def test_restart_gives_a_fresh_sandbox():
    with running_kernel() as (km, kc):
        assert execute(kc, "x = 1").status == "ok"
        km.restart_kernel(now=False)
        kc.wait_for_ready(timeout=60)
        cell = execute(kc, "print('x' in dir())")
        assert cell.stream() == "False\n"


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
        server = next(p for p in family(km.provisioner.pid)[1:] if "hopx_kernel.server" in " ".join(p.cmdline()))
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
