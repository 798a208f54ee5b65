"""Shared fixtures: a real local sandbox server for the whole session, and leak checks.

Every process this test run starts inherits ``HKT_RUN_ID`` (a fresh id per run) and a
run-private ``TMPDIR``. At the end of the session no live process carrying this run's id
may remain and no sandbox folder may be left in the run's TMPDIR: a leak fails the run
loudly. Processes of other runs on the same machine are never touched.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import pytest

from .support.local_server import start_server

RUN_ID = uuid.uuid4().hex
RUN_TMP = Path(tempfile.mkdtemp(prefix="hopx-test-run-"))
os.environ["HKT_RUN_ID"] = RUN_ID
os.environ["TMPDIR"] = str(RUN_TMP)
tempfile.tempdir = None  # let tempfile pick up the new TMPDIR


#: The suites (or single tests) that take minutes, or seconds each: marked ``slow``, so
#: that ``pytest -m "not slow"`` is the fast loop (the pure modules, the server's planes,
#: the SDK oracles and the kernel's execute, widget and jupyter_kernel_test suites; under a
#: minute on a quiet machine). ``make test`` runs everything.
SLOW = (
    "tests/browser/",
    "tests/reliability/",
    "tests/security/",
    "tests/kernel/test_notebooks.py",
    "tests/kernel/test_parity.py",
    "tests/kernel/test_debugger.py",
    "tests/kernel/test_lifecycle.py",
    "tests/kernel/test_cloud_mode.py",
    "tests/kernel/test_agent_modes.py",
    "tests/kernel/test_early_sandbox.py",
    "tests/server/test_lifecycle.py",
    "tests/server/web/test_handoff.py",
    "tests/test_local_server.py",
    "tests/test_bench_smoke.py",
    "tests/test_packaging.py",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.nodeid.startswith(SLOW):
            item.add_marker(pytest.mark.slow)


def _of_this_run(proc: psutil.Process, descendants: set[int]) -> bool:
    """Whether ``proc`` belongs to this run. The local server makes itself non-dumpable
    (its environ is unreadable) and sandboxes get an allowlisted environment, so besides
    ``HKT_RUN_ID`` a process counts when its command line names the run's TMPDIR (sandbox
    kernels, embedded servers' --root) or it descends from pytest."""
    if proc.pid in descendants or str(RUN_TMP) in " ".join(proc.cmdline()):
        return True
    try:
        return proc.environ().get("HKT_RUN_ID") == RUN_ID
    except psutil.AccessDenied:
        return False


def run_processes() -> list[psutil.Process]:
    """Live processes started (directly or not) by this test run, other than pytest itself."""
    found = []
    me = psutil.Process()
    descendants = {p.pid for p in me.children(recursive=True)}
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if _of_this_run(proc, descendants):
                found.append(proc)
        except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
            continue
    return found


def run_sandbox_folders() -> list[Path]:
    return sorted(RUN_TMP.glob("hopx-local-*"))


@pytest.fixture(scope="session")
def local_server():
    """The session's local sandbox server (``base_url``, ``api_key``)."""
    server = start_server()
    yield server
    assert server.stop() == 0, "the local server exited non-zero on SIGTERM"


@pytest.fixture(autouse=True)
def _name_the_test(request):
    """Processes a test starts inherit its name, so a leak report can say who started them."""
    os.environ["HKT_TEST"] = request.node.nodeid
    yield
    os.environ.pop("HKT_TEST", None)


def _describe(proc: psutil.Process) -> str:
    """pid, command line, the test that started it (when readable), parent and state."""
    try:
        test = proc.environ().get("HKT_TEST", "?")
    except (psutil.AccessDenied, psutil.ZombieProcess):
        test = "?"
    age = time.time() - proc.create_time()
    return (
        f"{proc.pid}: {' '.join(proc.cmdline())[:120]} (started by {test}, {age:.0f} s ago;"
        f" parent {proc.ppid()}, {proc.status()})"
    )


@pytest.fixture(scope="session", autouse=True)
def _no_leaks():
    """Fail the run if a process it started or a sandbox folder outlives it."""
    yield
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and (run_processes() or run_sandbox_folders()):
        time.sleep(0.2)  # bounded wait for processes that are exiting right now
    procs, folders = run_processes(), run_sandbox_folders()
    described = []
    for proc in procs:
        try:
            described.append(_describe(proc))
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    shutil.rmtree(RUN_TMP, ignore_errors=True)
    assert not described, "processes leaked by the test run:\n" + "\n".join(described)
    assert not folders, f"leaked sandbox folders: {folders}"
