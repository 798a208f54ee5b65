"""Start and stop a local sandbox server process (the session fixture and tests that need their own)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
KERNEL_MARK = "hopx_kernel.server.kernel_launcher"
START_TIMEOUT = 60.0


@dataclass
class LocalServer:
    """A running local sandbox server started by a test."""

    base_url: str
    api_key: str
    proc: subprocess.Popen
    stderr_path: Path
    extra: dict = field(default_factory=dict)

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
    run_env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(REPO), run_env.get("PYTHONPATH")) if p)
    stderr = tempfile.NamedTemporaryFile(prefix="hopx-server-log-", suffix=".txt", delete=False)
    cmd = [sys.executable, "-m", "hopx_kernel.server", "--port", "0",
           "--parent-pid", str(parent_pid or os.getpid()), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr, env=run_env,
                            start_new_session=True, cwd=str(REPO))
    deadline = time.monotonic() + START_TIMEOUT
    import selectors

    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    line = b""
    while not line.endswith(b"\n"):
        left = deadline - time.monotonic()
        if left <= 0 or proc.poll() is not None or not sel.select(left):
            proc.kill()
            raise AssertionError(
                "local server did not report ready; log:\n" + Path(stderr.name).read_text())
        chunk = os.read(proc.stdout.fileno(), 4096)
        if not chunk:
            continue
        line += chunk
    info = json.loads(line.decode())
    return LocalServer(info["base_url"], info["api_key"], proc, Path(stderr.name))


