"""A sandbox's IPython kernel, started and driven with jupyter_client's async API.

One :class:`IPythonRunner` owns one kernel process. Three reader tasks (iopub, shell,
stdin) route every message by ``parent_header.msg_id`` to the queue of the request that
caused it, so executions, completions and inspections never see each other's messages.
:meth:`IPythonRunner.run_cell` turns a cell's messages into agent frames
(:mod:`hopx_kernel.server.domain.to_frames`) and supervises it: client interrupts, the
timeout, a client that went away, and the kernel process dying.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import logging
import os
import shutil
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.kernelspec import KernelSpec
from jupyter_client.manager import AsyncKernelManager

from ..domain.paths import HOME, host_root, private_folders
from ..domain.to_frames import cell_ending, to_frames
from ..server_errors import ServerError
from . import confinement
from .kernel_launcher import MEMORY_ENV, NPROC_ENV
from .kernel_sockets import CLIENT_CHANNELS, reader
from .process_groups import death_reason, group_size, kill_group, process_cap_reason
from .run_control import Ask, CellOutcome, Emit, Limits, RunControl

log = logging.getLogger(__name__)

#: Seconds between interrupts once a cell must stop (timeout or client gone).
REINTERRUPT_EVERY = 1.0
#: Seconds after the first forced interrupt before the kernel is killed instead.
KILL_AFTER = 10.0
#: Seconds between checks that the kernel process is still alive.
LIVENESS_EVERY = 0.25
STARTUP_TIMEOUT = 60.0
#: Kernel messages a running cell holds in the server before the iopub reader waits (and
#: with it ZeroMQ, and then the kernel's writer): the server's memory stays bounded.
CELL_QUEUE = 8
#: ZeroMQ's receive high-water mark on the server's kernel sockets (messages of <= 1 MB).
RECEIVE_HWM = 8

#: Longest Unix socket path Linux accepts (sun_path is 108 bytes with its NUL).
IPC_PATH_MAX = 107

#: Evaluated by IPython after each execution: the working directory, so the server knows
#: when a request's ``workdir`` needs no chdir (the SDK sends one on every call).
CWD_EXPRESSION = {"cwd": "__import__('os').getcwd()"}
#: Completions asked of every new kernel (a name at the top level, an attribute), so Jedi
#: has inferred what IPython puts in the namespace before the user's first Tab...
WARM_COMPLETIONS = ("pri", "import os; os.pa")
#: ...once it has been idle this many seconds (or at once in a refilling pool: warm()).
WARM_AFTER_IDLE = 1.0
#: Longest :meth:`IPythonRunner.warm` waits for each warm-up completion.
WARM_TIMEOUT = 10.0
# Where pip installs for one sandbox (under its home); PYTHONPATH puts it on sys.path.
SANDBOX_PACKAGES = ".local/pip-packages"


def count_code(count: int) -> str:
    """Quiet code numbering the next cell ``count``; ``In`` (a list indexed by number) is
    padded with empty entries for numbers the sandbox never ran (a local magic's)."""
    return (
        "def __hopx_count(n):\n"
        "    shell = get_ipython()\n"
        "    shell.execution_count = n\n"
        "    for hist in (shell.history_manager.input_hist_parsed, shell.history_manager.input_hist_raw):\n"
        "        hist.extend([''] * (n - len(hist)))\n"
        f"__hopx_count({int(count)})\n"
        "del __hopx_count\n"
    )


#: Receives the kernel's messages that no request of the server is waiting for:
#: (kind, msg) with kind "iopub", "reply" (shell) or "control".
Unrouted = Callable[[str, dict], None]


class IPythonRunner:
    """One IPython kernel process of one sandbox.

    Args:
        folder: the sandbox folder, the kernel's working directory.
        env: the kernel's environment (already scrubbed of secrets).
        runtime_dir: where the connection file goes (outside the sandbox folder).
        limits: resource caps.
    """

    def __init__(
        self,
        folder: Path,
        env: dict[str, str],
        runtime_dir: Path,
        limits: Limits,
        read_paths: list[str] | None = None,
    ):
        self.folder = folder
        self.limits = limits
        self._env = dict(env)
        #: this kernel's own folder for its connection file and sockets
        self._runtime_dir = runtime_dir / folder.name
        #: folders the sandbox may read when confined (None: not confined)
        self.read_paths = read_paths
        self._km: AsyncKernelManager | None = None
        self._kc: Any = None
        self._routes: dict[str, asyncio.Queue] = {}
        self._readers: list[asyncio.Task] = []
        self._died: str | None = None
        self._killed_by_us = False
        #: where messages go that no request is waiting for (the kernel channel)
        self.on_unrouted: Unrouted | None = None
        #: the debugger stopped the kernel at a breakpoint (a cell's timeout is then held)
        self.debug_paused = False
        #: the kernel's working directory after the last execution, when known
        self.cwd: str | None = str(folder)
        #: the count IPython gives the next stored execution (its ``execution_count``)
        self.next_count = 1
        self._busy = 0  # executions running (see _warm_when_idle)
        self._idle_since = time.monotonic()
        #: the completer is loaded (warm() or _warm_when_idle asked for it)
        self.warmed = False

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        """Start the kernel process and wait until it answers."""
        env = dict(self._env)
        env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"
        if self.limits.memory_mb:
            env[MEMORY_ENV] = str(self.limits.memory_mb)
            # RLIMIT_AS counts reserved address space: glibc's per-thread 64 MB malloc
            # arenas would use up a small cap before ipykernel's threads even start
            env.setdefault("MALLOC_ARENA_MAX", "2")
        if self.limits.max_procs:
            env[NPROC_ENV] = str(self.limits.max_procs)
        env.update(self.private_env())
        self._runtime_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        km = AsyncKernelManager(kernel_name="")
        km._kernel_spec = KernelSpec(
            # -Xfrozen_modules=off, as `ipykernel install` writes it: the debugger (debugpy,
            # imported by ipykernel at start) then sees every module and says nothing about it
            argv=[
                sys.executable,
                "-Xfrozen_modules=off",
                "-m",
                "hopx_kernel.server.runtime.kernel_launcher",
                "-f",
                "{connection_file}",
            ],
            display_name="HopX local sandbox",
            language="python",
            interrupt_mode="signal",
        )
        km.connection_file = str(self._runtime_dir / "kernel.json")
        # Unix sockets in the server's private folder, not TCP: no port another process can
        # reach or take between jupyter_client choosing it and the kernel binding it. A
        # socket path must fit in 107 bytes; under a very deep --root, TCP it is.
        ipc_base = str(self._runtime_dir / "k")
        if len(ipc_base.encode()) <= IPC_PATH_MAX - 4:  # room for "-N"
            km.transport = "ipc"
            km.ip = ipc_base
        self._km = km
        # Over TCP another process may take a port between jupyter_client choosing it and
        # the kernel binding it: that kernel exits at once (kernel_launcher.main), and a
        # second start, on fresh ports, is the cure. A kernel that died over IPC, or twice,
        # has a cause of its own.
        attempts = 1 if km.transport == "ipc" else 2
        for attempt in range(1, attempts + 1):
            await km.start_kernel(env=env, cwd=str(self.folder))
            kc = km.client(**CLIENT_CHANNELS)
            kc.context.setsockopt(zmq.RCVHWM, RECEIVE_HWM)  # for the sockets made below
            kc.start_channels()
            self._kc = kc
            try:
                await kc.wait_for_ready(timeout=STARTUP_TIMEOUT)
                break
            except RuntimeError as exc:
                if attempt < attempts and not await km.is_alive():
                    log.warning(
                        "sandbox %s: IPython kernel died at start (%s); starting it again",
                        self.folder.name,
                        exc,
                    )
                    kc.stop_channels()
                    await km.cleanup_resources()
                    continue
                await self.shutdown()
                raise ServerError(503, "SERVICE_UNAVAILABLE", f"IPython kernel did not start: {exc}") from exc
        self._readers = [
            asyncio.create_task(self._read(reader(kc.iopub_channel), "iopub")),
            asyncio.create_task(self._read(reader(kc.shell_channel), "reply")),
            asyncio.create_task(self._read(reader(kc.stdin_channel), "stdin")),
            asyncio.create_task(self._warm_when_idle()),
            asyncio.create_task(self._read(reader(kc.control_channel), "control")),
        ]
        self._idle_since = time.monotonic()  # idle from now: ready, no cell yet

    async def _warm_when_idle(self) -> None:
        """Load the completer (Jedi's import and first inference: 0.3-4 s) once the kernel
        has been idle for WARM_AFTER_IDLE seconds (in the pool, or before the user's first
        Tab), so the first Tab answers at once; never while cells come back to back, which
        would wait behind it."""
        while True:
            if self.warmed:
                return
            wait = self._idle_since + WARM_AFTER_IDLE - time.monotonic()
            if wait <= 0 and not self._busy:
                break
            await asyncio.sleep(wait if wait > 0 else WARM_AFTER_IDLE)
        await self.warm()

    async def warm(self) -> None:
        """Load the completer now and wait for it (bounded): a pooled kernel is warmed
        before it is handed out, so a cell sent right after the create never waits
        behind Jedi's start, as it would if the idle warm-up began just before."""
        if self.warmed:
            return
        self.warmed = True
        for code in WARM_COMPLETIONS:
            if self._died is not None:
                return  # stopped or dead meanwhile: the pool's hand-out check finds out
            await self.complete(code, len(code), WARM_TIMEOUT)

    @contextlib.contextmanager
    def _running(self):
        """Marks the kernel busy (for the completer warm-up) while an execution runs."""
        self._busy += 1
        try:
            yield
        finally:
            self._busy -= 1
            self._idle_since = time.monotonic()

    def private_env(self) -> dict[str, str]:
        """``HOME`` and ``TMPDIR`` (the sandbox's own home and /tmp folders, made here if
        missing) and the confinement rules of this sandbox's processes."""
        own = private_folders(self.folder)
        for folder in own:
            folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        home = host_root(self.folder, HOME)
        # `%pip install` goes to a folder of this sandbox's own, first on sys.path: the
        # server's venv is read-only under confinement, and shared by every sandbox anyway.
        packages = home / SANDBOX_PACKAGES
        packages.mkdir(mode=0o700, parents=True, exist_ok=True)  # on sys.path from the start
        env = {
            "HOME": str(home),
            "TMPDIR": str(host_root(self.folder, "/tmp")),
            "PIP_TARGET": str(packages),
            "PYTHONPATH": os.pathsep.join(p for p in (str(packages), self._env.get("PYTHONPATH")) if p),
        }
        if self.read_paths is not None:
            spec = confinement.rules([str(p) for p in own], self.read_paths)
            env[confinement.ENV] = json.dumps(spec)
        return env

    async def shutdown(self) -> None:
        """Stop the kernel process (and its process group) and the readers."""
        for task in self._readers:
            task.cancel()
        for task in self._readers:
            with contextlib.suppress(BaseException):
                await task
        self._readers = []
        if self._kc is not None:
            with contextlib.suppress(Exception):
                self._kc.stop_channels()
        if self._km is not None:
            self._killed_by_us = True
            with contextlib.suppress(Exception):
                await self._km.shutdown_kernel(now=True)
            self._km = None
        # a cell still running (the sandbox was ended under it) must see the kernel gone
        self._died = self._died or "the sandbox was ended"
        await asyncio.to_thread(shutil.rmtree, self._runtime_dir, True)

    @property
    def pid(self) -> int | None:
        """The kernel process id, if it runs."""
        provisioner = self._km.provisioner if self._km else None
        return getattr(provisioner, "pid", None)

    async def check_alive(self) -> str | None:
        """None while the kernel runs; otherwise why it died (remembered)."""
        if self._died is None and self._km is not None and not await self._km.is_alive():
            process = getattr(self._km.provisioner, "process", None)
            code = process.poll() if process is not None else None
            self._died = death_reason(code, self.limits.memory_mb)
        return self._died

    async def interrupt(self) -> None:
        """Send SIGINT to the kernel's process group."""
        if self._km is not None:
            with contextlib.suppress(Exception):
                await self._km.interrupt_kernel()

    async def _kill(self, reason: str) -> None:
        if self._km is not None and self._km.provisioner is not None:
            with contextlib.suppress(Exception):
                await self._km.provisioner.kill()
        self._died = reason

    async def _read(self, get: Callable[[], Awaitable[dict]], kind: str) -> None:
        while True:
            try:
                msg = await get()
            except asyncio.CancelledError:
                raise
            except Exception:  # a malformed message must not stop the reader
                log.debug("dropped an unreadable %s message", kind, exc_info=True)
                continue
            if kind == "iopub" and msg["header"].get("msg_type") == "debug_event":
                event = (msg.get("content") or {}).get("event")
                if event in ("stopped", "continued"):
                    self.debug_paused = event == "stopped"
            queue = self._routes.get(msg.get("parent_header", {}).get("msg_id", ""))
            if queue is not None:
                if queue.maxsize:  # a cell's: wait for it (backpressure to the kernel)
                    await queue.put((kind, msg))
                else:
                    queue.put_nowait((kind, msg))
            elif self.on_unrouted is not None and kind != "stdin":
                try:
                    self.on_unrouted(kind, msg)
                except Exception:  # the channel's trouble must not stop the reader
                    log.exception("could not pass a kernel message to the kernel channel")

    def send(self, channel: str, msg: dict, buffers: list[bytes]) -> None:
        """Hand a client's Jupyter message to the kernel, header unchanged (§2.4)."""
        if self._kc is None:
            return
        out = dict(msg, buffers=list(buffers))
        target = self._kc.control_channel if channel == "control" else self._kc.shell_channel
        target.send(out)

    # ------------------------------------------------------------ requests

    async def _request(self, msg_id: str, timeout: float) -> dict | None:
        """Wait for the shell reply to ``msg_id`` (the route must exist)."""
        queue = self._routes[msg_id]

        async def reply() -> dict:
            while True:
                kind, msg = await queue.get()
                if kind == "reply":
                    return msg["content"]

        try:
            # wait_for, not asyncio.timeout (3.11+): the package supports Python 3.10
            return await asyncio.wait_for(reply(), timeout)
        except asyncio.TimeoutError:
            return None
        finally:
            self._routes.pop(msg_id, None)

    async def complete(self, code: str, cursor_pos: int, timeout: float) -> dict | None:
        """The kernel's ``complete_reply`` content, or None after ``timeout`` seconds."""
        msg_id = self._kc.complete(code, cursor_pos)
        self._routes[msg_id] = asyncio.Queue()
        return await self._request(msg_id, timeout)

    async def inspect(self, code: str, cursor_pos: int, detail_level: int, timeout: float):
        """The kernel's ``inspect_reply`` content, or None after ``timeout`` seconds."""
        msg_id = self._kc.inspect(code, cursor_pos, detail_level)
        self._routes[msg_id] = asyncio.Queue()
        return await self._request(msg_id, timeout)

    async def run_silent(self, code: str, timeout: float = 10.0) -> bool:
        """Run bookkeeping code quietly (no history, no output); True when it succeeded."""
        with self._running():
            msg_id = self._kc.execute(
                code, silent=True, store_history=False, stop_on_error=False, user_expressions=CWD_EXPRESSION
            )
            self._routes[msg_id] = asyncio.Queue()
            reply = await self._request(msg_id, timeout)
        self._note_cwd(reply)
        return reply is not None and reply.get("status") == "ok"

    def _note_cwd(self, reply: dict | None) -> None:
        """Remember the working directory the reply's user expression reported."""
        self.cwd = None
        value = ((reply or {}).get("user_expressions") or {}).get("cwd") or {}
        if value.get("status") == "ok":
            try:
                cwd = ast.literal_eval(value["data"]["text/plain"])
            except (KeyError, ValueError, SyntaxError):
                return
            self.cwd = cwd if isinstance(cwd, str) else None

    async def set_count(self, count: int) -> None:
        """Make ``count`` the number IPython gives the next cell (``In``, ``Out``, ``_N``,
        "Cell In[N]"): one quiet execution, only when it differs from the kernel's own."""
        if count != self.next_count and await self.run_silent(count_code(count)):
            self.next_count = count

    async def run_cell(
        self,
        code: str,
        *,
        allow_stdin: bool,
        emit: Emit,
        ask: Ask | None,
        control: RunControl,
        msg_id: str | None = None,
        extensions: bool = False,
        execution_count: int | None = None,
    ) -> CellOutcome:
        """Execute one cell, emitting its output frames in order.

        Args:
            code: the cell.
            execution_count: [ext] the client's count for the cell; given, the cell runs
                under that number and its ``execute_result`` is emitted in order as an
                :class:`~hopx_kernel.frames.ExecuteResult` frame instead of being kept for
                the ``result`` frame.
            allow_stdin: let ``input()`` ask the client (via ``ask``); otherwise it raises
                ``StdinNotImplementedError`` at once.
            emit: sends one frame to the client.
            ask: answers an input request (prompt, password) -> value.
            control: interrupts, timeout and abandonment from the client side.
            msg_id: [ext] run under this Jupyter msg_id (the frontend's), so widgets that
                key on it (Output) capture this cell's output.
            extensions: [ext] pass the cell's other iopub messages (comms) as ``jupyter``
                frames.
        """
        with self._running():
            return await self._run_cell(
                code, allow_stdin, emit, ask, control, msg_id, extensions, execution_count
            )

    async def _run_cell(
        self, code, allow_stdin, emit, ask, control, msg_id, extensions, execution_count
    ) -> CellOutcome:
        outcome = CellOutcome()
        if await self.check_alive():
            outcome.died = self._died
            return outcome
        if execution_count is not None:
            await self.set_count(execution_count)
        in_order = execution_count is not None
        content = dict(
            code=code,
            silent=False,
            store_history=True,
            allow_stdin=allow_stdin,
            stop_on_error=False,
            user_expressions=CWD_EXPRESSION,
        )
        request = self._kc.session.msg("execute_request", content)
        if msg_id and msg_id not in self._routes:
            request["header"]["msg_id"] = request["msg_id"] = msg_id
        msg_id = request["header"]["msg_id"]
        self._kc.shell_channel.send(request)
        queue: asyncio.Queue = asyncio.Queue(CELL_QUEUE)
        self._routes[msg_id] = queue

        def wake() -> None:  # a full queue wakes the runner anyway
            if not queue.full():
                queue.put_nowait(("control", None))

        control.start(wake)
        watch = _Watch()
        pending_input: asyncio.Task | None = None
        reply = idle = False
        try:
            while not (reply and idle):
                try:  # (wait_for, not asyncio.timeout: 3.11+)
                    kind, msg = await asyncio.wait_for(queue.get(), LIVENESS_EVERY)
                except asyncio.TimeoutError:
                    kind, msg = "tick", None
                if msg is not None:
                    msg_type = msg["header"]["msg_type"]
                    content = msg["content"]
                    if kind == "reply":
                        reply = True
                        outcome.status = content.get("status", "ok")
                        outcome.payload = content.get("payload") or None
                        self._note_cwd(content)
                        if isinstance(content.get("execution_count"), int):
                            self.next_count = content["execution_count"] + 1
                    elif kind == "stdin" and msg_type == "input_request":
                        if pending_input is not None:
                            pending_input.cancel()
                        pending_input = asyncio.create_task(self._answer(emit, ask, content))
                    elif kind == "iopub":
                        idle = idle or (msg_type == "status" and content.get("execution_state") == "idle")
                        await self._on_iopub(msg, emit, outcome, extensions, in_order)
                if await self._supervise(control, watch, outcome):
                    break
        finally:
            self._routes.pop(msg_id, None)
            while not queue.empty():  # a reader waiting to put into it goes on
                queue.get_nowait()
            if pending_input is not None:
                pending_input.cancel()
        outcome.timed_out = watch.timed_out
        return outcome

    async def _answer(self, emit: Emit, ask: Ask | None, content: dict) -> None:
        prompt = content.get("prompt", "")
        password = bool(content.get("password", False))
        value = await ask(prompt, password) if ask is not None else ""
        self._kc.input(value)

    @staticmethod
    async def _on_iopub(
        msg: dict, emit: Emit, outcome: CellOutcome, extensions: bool, in_order: bool = False
    ) -> None:
        for frame in to_frames(msg, extensions=extensions, in_order=in_order):
            await emit(frame)
        for name, value in cell_ending(msg, in_order).items():
            setattr(outcome, name, value)

    async def _supervise(self, control: RunControl, watch: _Watch, outcome: CellOutcome) -> bool:
        """Act on interrupts, the deadline and liveness; True when the cell is over."""
        now = time.monotonic()
        if control.deadline is not None and self.debug_paused:
            # paused at a breakpoint: the clock stops (HOPX_EXEC_TIMEOUT must not kill it)
            control.deadline += now - watch.ticked_at
        watch.ticked_at = now
        if control.interrupts > watch.interrupts:
            watch.interrupts = control.interrupts
            await self.interrupt()
        must_stop = control.abandoned
        if control.deadline is not None and now >= control.deadline:
            watch.timed_out = True
            must_stop = True
        if must_stop:
            if watch.forced_at is None:
                watch.forced_at = watch.last_interrupt = now
                await self.interrupt()
            elif now - watch.forced_at > KILL_AFTER:
                await self._kill(f"it did not stop within {KILL_AFTER:.0f} s of an interrupt")
                outcome.died = self._died
                return True
            elif now - watch.last_interrupt > REINTERRUPT_EVERY:
                watch.last_interrupt = now
                await self.interrupt()
        if now - watch.checked_at >= LIVENESS_EVERY:
            watch.checked_at = now
            if await self.check_alive() or await self._over_process_cap():
                outcome.died = self._died
                return True
        return False

    async def _over_process_cap(self) -> bool:
        """Enforce ``max_procs`` by counting the kernel's process group.

        RLIMIT_NPROC (set in the kernel too) counts every process of the uid and is not
        enforced for root, so the server also counts the group itself and ends the
        sandbox (the whole group, orphans included) once it is over the cap.
        """
        cap, pgid = self.limits.max_procs, self.pid
        if not cap or pgid is None:
            return False
        if await asyncio.to_thread(group_size, pgid) <= cap:
            return False
        self._killed_by_us = True
        await kill_group(pgid)
        self._died = process_cap_reason(cap)
        return True


@dataclass
class _Watch:
    """Supervision state of one running cell."""

    interrupts: int = 0
    timed_out: bool = False
    forced_at: float | None = None
    last_interrupt: float = 0.0
    checked_at: float = field(default_factory=time.monotonic)
    ticked_at: float = field(default_factory=time.monotonic)
