"""Start and stop a local sandbox server process (the session fixture and tests that need their own)."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from hopx_kernel.errors import HopxKernelError
from hopx_kernel.local_server import LocalServer as Handle

REPO = Path(__file__).resolve().parents[2]
KERNEL_MARK = "hopx_kernel.server.runtime.kernel_launcher"
START_TIMEOUT = 60.0


@dataclass
class LocalServer:
    """A running local sandbox server started by a test."""

    base_url: str
    api_key: str
    proc: subprocess.Popen
    stderr_path: Path
    extra: dict = field(default_factory=dict)
    handle: Handle | None = None

    @property
    def ws_url(self) -> str:
        return "ws://" + self.base_url.split("://", 1)[1]

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM the server and wait; returns its exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired as exc:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
            raise AssertionError(f"the local server did not stop within {timeout} s of SIGTERM") from exc


def start_server(*args: str, env: dict | None = None, parent_pid: int | None = None) -> LocalServer:
    """Start a local sandbox server and wait for its ready line."""
    run_env = dict(os.environ if env is None else env)
    run_env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), run_env.get("PYTHONPATH")) if p)
    stderr = tempfile.NamedTemporaryFile(prefix="hopx-server-log-", suffix=".txt", delete=False)
    handle = Handle.start(
        ["--parent-pid", str(parent_pid or os.getpid()), *args], env=run_env, stderr=stderr, cwd=str(REPO)
    )
    try:
        base_url, api_key = handle.ready(START_TIMEOUT)
    except HopxKernelError as exc:
        raise AssertionError(
            f"local server did not report ready ({exc.line()}); log:\n" + Path(stderr.name).read_text()
        ) from exc
    return LocalServer(base_url, api_key, handle.proc, Path(stderr.name), handle=handle)
