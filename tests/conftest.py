"""Shared fixtures: a real local sandbox server for the whole session, and leak checks.

Every process this test run starts inherits ``HKT_RUN_ID`` (a fresh id per run) and a
run-private ``TMPDIR``. At the end of the session no live process carrying this run's id
may remain and no sandbox folder may be left in the run's TMPDIR: a leak fails the run
loudly. Processes of other runs on the same machine are never touched.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psutil
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))  # for local_server_process

from local_server_process import start_server  # noqa: E402

RUN_ID = uuid.uuid4().hex
RUN_TMP = Path(tempfile.mkdtemp(prefix="hopx-test-run-"))
os.environ["HKT_RUN_ID"] = RUN_ID
os.environ["TMPDIR"] = str(RUN_TMP)
tempfile.tempdir = None  # let tempfile pick up the new TMPDIR


def run_processes() -> list[psutil.Process]:
    """Live processes started (directly or not) by this test run, other than pytest itself."""
    found = []
    for proc in psutil.process_iter(["pid", "status"]):
        try:
            if proc.pid == os.getpid() or proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if proc.environ().get("HKT_RUN_ID") == RUN_ID:
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
            described.append(f"{proc.pid}: {' '.join(proc.cmdline())[:120]}")
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    shutil.rmtree(RUN_TMP, ignore_errors=True)
    assert not described, "processes leaked by the test run:\n" + "\n".join(described)
    assert not folders, f"leaked sandbox folders: {folders}"
