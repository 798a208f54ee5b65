"""Sandbox caps in embedded mode (HOPX_LOCAL_MEMORY_MB, HOPX_LOCAL_MAX_PROCS): a runaway
cell gets one clear error, the machine is fine, and the next cell works."""

from __future__ import annotations

import os

import psutil
import pytest

from hopx_kernel.config import from_env
from hopx_kernel.embedded import limit_args
from hopx_kernel.server.runtime.process_groups import group_size

from ..support.kernels import execute
from ..support.reliability import kernel, wait_for

MEMORY_MB = 300
MAX_PROCS = 20


@pytest.fixture(scope="module")
def capped():
    with kernel({"HOPX_LOCAL_MEMORY_MB": str(MEMORY_MB), "HOPX_LOCAL_MAX_PROCS": str(MAX_PROCS)}) as (km, kc):
        yield km, kc


def test_limit_variables_become_server_options():
    env = {"HOPX_LOCAL_MEMORY_MB": "512", "HOPX_LOCAL_MAX_PROCS": "64"}
    assert limit_args(from_env(env)) == ["--memory-limit-mb", "512", "--max-procs", "64"]
    assert limit_args(from_env({})) == []


def test_unbounded_allocation_is_one_clear_error_and_the_next_cell_works(capped):
    _, kc = capped
    cell = execute(kc, "hog = []\nwhile True:\n    hog.append(bytearray(10 * 2**20))", timeout=60)
    errors = cell.of("error")
    assert cell.status == "error" and len(errors) == 1
    error = errors[0]
    if error["ename"] == "MemoryError":  # the kernel survived: its state is kept
        after = execute(kc, "del hog\nprint('fine')")
    else:  # the kernel died: the message names the cap, the next cell gets a new sandbox
        assert error["ename"] == "SandboxDied" and f"the {MEMORY_MB} MB memory cap" in error["evalue"]
        assert "The next cell runs in a new sandbox" in error["evalue"]
        after = execute(kc, "print('fine')")
    assert after.status == "ok" and after.stream() == "fine\n"


def test_fork_bomb_ends_the_sandbox_with_a_clear_error(capped):
    _, kc = capped
    pid = int(execute(kc, "import os; print(os.getpid())").stream())
    bomb = "import os, time\nwhile True:\n    os.fork()\n    time.sleep(0.2)\n"
    cell = execute(kc, bomb, timeout=60)
    errors = cell.of("error")
    assert cell.status == "error" and len(errors) == 1
    assert errors[0]["ename"] == "SandboxDied"
    assert errors[0]["evalue"] == (
        f"the sandbox's Python process died (it started more than {MAX_PROCS} processes, the "
        "sandbox's process cap (--max-procs / HOPX_LOCAL_MAX_PROCS)); its state is lost. "
        "The next cell runs in a new sandbox; variables and imports from before are gone."
    )
    # the machine is fine: nothing of the bomb's process group is left
    wait_for(lambda: group_size(pid) == 0, 10, "the fork bomb's processes to be gone")
    after = execute(kc, f"import os; print(os.getpid() != {pid:d})")
    assert after.status == "ok" and after.stream() == "True\n"


def test_bash_fork_bomb_is_stopped_too(capped):
    _, kc = capped
    cell = execute(kc, "%%bash\nb() { sleep 0.2; b & b; }; b", timeout=60)
    assert f"stopped: it started more than {MAX_PROCS} processes" in cell.stream("stderr")
    assert cell.status == "error"
    assert execute(kc, "print('ok')").stream() == "ok\n"
    assert not [
        p
        for p in psutil.process_iter(["name", "environ"])
        if p.info["name"] == "sleep" and (p.info["environ"] or {}).get("TMPDIR") == os.environ["TMPDIR"]
    ]  # sandboxes keep TMPDIR (allowlist)
