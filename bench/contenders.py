"""Start, drive and stop each contender.

* ``ipykernel``      — the venv's ``python3`` kernelspec (the baseline);
* ``hopx-embedded``  — ``hopx-remote-python`` with no HOPX_* variables (own local server);
* ``hopx-cloud``     — ``hopx-remote-python`` with HOPX_API_KEY/HOPX_BASE_URL pointing at a
  separately started ``hopx-kernel serve``;
* ``sdk``            — the official ``hopx_ai.AsyncSandbox.run_code_stream`` against that
  same server (what a user would write by hand).

Every process started here is registered in :data:`STARTED` and stopped by
:func:`cleanup` (also registered with ``atexit``), so a failed run leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from queue import Empty

import psutil
from jupyter_client.manager import KernelManager

from hopx_kernel.local_server import LocalServer

IPYKERNEL = "ipykernel"
EMBEDDED = "hopx-embedded"
CLOUD = "hopx-cloud"
SDK = "sdk"
ALL = (IPYKERNEL, EMBEDDED, CLOUD, SDK)
KERNELS = (IPYKERNEL, EMBEDDED, CLOUD)
LABELS = {
    IPYKERNEL: "local ipykernel",
    EMBEDDED: "HopX kernel, embedded",
    CLOUD: "HopX kernel, cloud mode",
    SDK: "hopx-ai SDK stream",
}
KERNEL_NAMES = {IPYKERNEL: "python3", EMBEDDED: "hopx-remote-python", CLOUD: "hopx-remote-python"}
CELL_TIMEOUT = 120.0

#: The SDK row sends the same execute frame as the kernel (no workdir): with the SDK's
#: default working_dir='/workspace' the server adds two silent bookkeeping executions per
#: cell, which would make "kernel − SDK" meaningless. Set to "/workspace" for the default.
SDK_WORKDIR = None

_KERNEL_LOG = None


def kernel_log():
    """One file for the stderr of every kernel we start (keeps the bench output readable)."""
    global _KERNEL_LOG
    if _KERNEL_LOG is None:
        import tempfile

        _KERNEL_LOG = tempfile.NamedTemporaryFile(
            prefix="hopx-bench-kernels-", suffix=".log", delete=False, mode="ab"
        )
    return _KERNEL_LOG


def close_kernel_log(keep: bool) -> None:
    """Close the kernels' stderr log; delete it unless ``keep`` (then say where it is)."""
    global _KERNEL_LOG
    if _KERNEL_LOG is None:
        return
    _KERNEL_LOG.close()
    if keep:
        print(f"bench: kernel stderr is in {_KERNEL_LOG.name}", file=sys.stderr)
    else:
        Path(_KERNEL_LOG.name).unlink(missing_ok=True)
    _KERNEL_LOG = None


STARTED: list = []  # things with .stop(); stopped in reverse order by cleanup()


def cleanup() -> None:
    while STARTED:
        thing = STARTED.pop()
        try:
            thing.stop()
        except Exception as exc:  # keep stopping the rest
            print(f"bench: could not stop {thing!r}: {exc}", file=sys.stderr)


atexit.register(cleanup)


def ensure_python3_kernelspec() -> Path:
    """The venv's python3 kernelspec; installed with ``ipykernel install --sys-prefix`` if missing."""
    path = Path(sys.prefix) / "share" / "jupyter" / "kernels" / "python3"
    if not (path / "kernel.json").exists():
        subprocess.run(
            [sys.executable, "-m", "ipykernel", "install", "--sys-prefix"],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    return path


def base_env() -> dict[str, str]:
    """Our environment without HopX or Jupyter session variables."""
    return {k: v for k, v in os.environ.items() if not k.upper().startswith(("HOPX_", "JPY_"))}


# ---------------------------------------------------------------------------- server


class Server:
    """A separately started ``hopx-kernel serve`` (cloud mode's control plane + agents)."""

    def __init__(self, args: list[str] = ()) -> None:
        exe = Path(sys.executable).parent / "hopx-kernel"
        cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "hopx_kernel"]
        self.server = LocalServer.start(
            ["--port", "0", "--parent-pid", str(os.getpid()), "--log-level", "warning", *args],
            command=[*cmd, "serve"],
            env=base_env(),
        )
        self.proc = self.server.proc
        STARTED.append(self)
        self.base_url, self.api_key = self.server.ready()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def env(self) -> dict[str, str]:
        return {"HOPX_API_KEY": self.api_key, "HOPX_BASE_URL": self.base_url}

    def stop(self) -> None:
        self.server.stop(grace=30)
        if self in STARTED:
            STARTED.remove(self)

    def __repr__(self) -> str:
        return f"<hopx-kernel serve pid={self.proc.pid}>"


# ---------------------------------------------------------------------------- one cell


@dataclass
class CellRun:
    """What the client saw for one cell; every time in seconds since the request was sent."""

    sent: float = float("nan")  # perf_counter() when the request was sent
    total: float = float("nan")  # → status idle (kernels) / 'complete' (SDK)
    result: float = float("nan")  # → execute_result / 'result'
    first_stream: float = float("nan")  # → first stream message
    n_stream: int = 0
    stream_chars: int = 0
    outputs: list = field(default_factory=list)


def kernel_env(key: str, server: Server | None) -> dict[str, str]:
    env = base_env()
    if key == CLOUD:
        assert server is not None
        env.update(server.env())
    return env


class KernelContender:
    """One kernel driven through jupyter_client's BlockingKernelClient."""

    def __init__(self, key: str, server: Server | None = None) -> None:
        self.key = key
        self.server = server
        self.km: KernelManager | None = None
        self.kc = None

    def __repr__(self) -> str:
        return f"<{self.key} kernel>"

    def start(self) -> None:
        self.km = KernelManager(kernel_name=KERNEL_NAMES[self.key])
        STARTED.append(self)
        self.km.start_kernel(env=kernel_env(self.key, self.server), stderr=kernel_log())
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)

    def stop(self) -> None:
        if self in STARTED:
            STARTED.remove(self)
        if self.kc is not None:
            self.kc.stop_channels()
            self.kc = None
        if self.km is not None:
            if self.km.has_kernel and self.km.is_alive():
                self.km.shutdown_kernel(now=False)
            self.km = None

    def restart(self) -> None:
        self.km.restart_kernel(now=False)
        self.kc.wait_for_ready(timeout=60)

    @property
    def pid(self) -> int | None:
        return getattr(self.km.provisioner, "pid", None) if self.km else None

    def server_pid(self) -> int | None:
        """The process serving this kernel's sandbox (None for ipykernel)."""
        if self.key == CLOUD:
            return self.server.pid
        if self.key == EMBEDDED and self.pid:
            try:
                for child in psutil.Process(self.pid).children():
                    if "hopx_kernel.server" in " ".join(child.cmdline()):
                        return child.pid
            except psutil.Error:
                return None
        return None

    def run(self, code: str, keep_outputs: bool = False) -> CellRun:
        return run_cell(self.kc, code, keep_outputs)


def run_cell(kc, code: str, keep_outputs: bool = False) -> CellRun:
    """Send one execute_request; collect iopub until status idle, then the reply."""
    out = CellRun()
    get = kc.iopub_channel.get_msg
    t0 = time.perf_counter()
    msg_id = kc.execute(code)
    out.sent = t0
    deadline = t0 + CELL_TIMEOUT
    while True:
        try:
            msg = get(timeout=max(0.0, deadline - time.perf_counter()))
        except Empty as exc:
            raise TimeoutError(f"cell did not go idle within {CELL_TIMEOUT:.0f} s: {code[:50]!r}") from exc
        now = time.perf_counter() - t0
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        msg_type = msg["header"]["msg_type"]
        content = msg["content"]
        if msg_type == "stream":
            if out.n_stream == 0:
                out.first_stream = now
            out.n_stream += 1
            out.stream_chars += len(content["text"])
        elif msg_type == "execute_result":
            out.result = now
        elif msg_type == "status" and content["execution_state"] == "idle":
            out.total = now
            break
        if keep_outputs:
            out.outputs.append((msg_type, content))
    while True:
        reply = kc.get_shell_msg(timeout=CELL_TIMEOUT)
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    if reply["content"]["status"] != "ok":
        raise RuntimeError(
            f"cell failed in {kc!r}: {reply['content'].get('ename')}: {reply['content'].get('evalue')}"
        )
    return out


def widget_round_trip(kc, comm_id: str, value: int) -> float:
    """Seconds from sending a widget ``update`` to its ``echo_update`` arriving."""
    msg = kc.session.msg(
        "comm_msg",
        {"comm_id": comm_id, "data": {"method": "update", "state": {"value": value}, "buffer_paths": []}},
    )
    t0 = time.perf_counter()
    kc.session.send(kc.shell_channel.socket, msg)
    deadline = t0 + CELL_TIMEOUT
    while True:
        left = deadline - time.perf_counter()
        if left <= 0:
            raise TimeoutError("no echo_update for a widget update")
        got = kc.iopub_channel.get_msg(timeout=left)
        if (
            got["parent_header"].get("msg_id") == msg["header"]["msg_id"]
            and got["header"]["msg_type"] == "comm_msg"
        ):
            return time.perf_counter() - t0


# ---------------------------------------------------------------------------- SDK


class SdkContender:
    """``hopx_ai.AsyncSandbox`` on a private event loop, driven from the main thread."""

    key = SDK

    def __init__(self, server: Server) -> None:
        self.server = server
        self.loop = asyncio.new_event_loop()
        self.sandbox = None

    def __repr__(self) -> str:
        return "<hopx-ai SDK sandbox>"

    def start(self) -> None:
        from hopx_ai import AsyncSandbox

        STARTED.append(self)
        self.sandbox = self.loop.run_until_complete(
            AsyncSandbox.create(
                template="code-interpreter", api_key=self.server.api_key, base_url=self.server.base_url
            )
        )

    def stop(self) -> None:
        if self in STARTED:
            STARTED.remove(self)
        if self.sandbox is not None:
            try:
                self.loop.run_until_complete(asyncio.wait_for(self.sandbox.kill(), 15))
            finally:
                self.sandbox = None
        if not self.loop.is_closed():
            self.loop.run_until_complete(self.loop.shutdown_asyncgens())
            self.loop.close()

    pid = None

    def server_pid(self) -> int:
        return self.server.pid

    async def _run(self, code: str, keep_outputs: bool) -> CellRun:
        out = CellRun()
        t0 = out.sent = time.perf_counter()
        async for msg in self.sandbox.run_code_stream(
            code, timeout=int(CELL_TIMEOUT), working_dir=SDK_WORKDIR
        ):
            now = time.perf_counter() - t0
            kind = msg.get("type")
            if kind in ("stdout", "stderr"):
                if out.n_stream == 0:
                    out.first_stream = now
                out.n_stream += 1
                out.stream_chars += len(msg.get("data", ""))
            elif kind == "result":
                out.result = now
            elif kind == "complete":
                out.total = now
                if not msg.get("success", False):
                    raise RuntimeError(f"SDK cell failed: {code[:50]!r}")
            elif kind == "error":
                raise RuntimeError(f"SDK stream error: {msg}")
            if keep_outputs:
                out.outputs.append((kind, msg))
        return out

    def run(self, code: str, keep_outputs: bool = False) -> CellRun:
        return self.loop.run_until_complete(self._run(code, keep_outputs))


# ---------------------------------------------------------------------------- RSS


class RssSampler:
    """Samples the RSS of some processes every ``interval`` s in a thread; keeps the peak."""

    def __init__(self, pids: dict[str, int | None], interval: float = 0.01) -> None:
        self.procs = {}
        for role, pid in pids.items():
            if pid:
                try:
                    self.procs[role] = psutil.Process(pid)
                except psutil.Error:
                    pass
        self.interval = interval
        self.before: dict[str, int] = {}
        self.peak: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _rss(self, proc) -> int | None:
        try:
            return proc.memory_info().rss
        except psutil.Error:
            return None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            for role, proc in self.procs.items():
                rss = self._rss(proc)
                if rss is not None and rss > self.peak.get(role, 0):
                    self.peak[role] = rss

    def __enter__(self) -> RssSampler:
        for role, proc in self.procs.items():
            rss = self._rss(proc)
            if rss is not None:
                self.before[role] = self.peak[role] = rss
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        for role, proc in self.procs.items():  # one last sample
            rss = self._rss(proc)
            if rss is not None and rss > self.peak.get(role, 0):
                self.peak[role] = rss

    def growth_mb(self, role: str) -> float:
        if role not in self.before:
            return float("nan")
        return (self.peak[role] - self.before[role]) / 1e6
