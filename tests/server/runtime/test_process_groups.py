"""Why a sandbox kernel ended (hopx_kernel/server/runtime/process_groups.py)."""

from __future__ import annotations

import signal

from hopx_kernel.server.runtime.process_groups import death_reason


def test_death_reason():
    assert death_reason(-signal.SIGKILL, 512) == "killed by signal 9 (SIGKILL) — likely the 512 MB memory cap"
    assert death_reason(-signal.SIGKILL, None) == "killed by signal 9 (SIGKILL)"
    assert death_reason(3, None) == "exited with code 3"
