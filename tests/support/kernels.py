"""Driving the installed "HopX Remote Python" kernel through jupyter_client, as a frontend does."""

from __future__ import annotations

import contextlib
import os
import time
from dataclasses import dataclass, field
from queue import Empty

import psutil
from jupyter_client.manager import KernelManager

KERNEL_NAME = "hopx-remote-python"


@dataclass
class Cell:
    """What a frontend saw for one execute_request."""

    reply: dict
    outputs: list[tuple[str, dict]] = field(default_factory=list)
    times: list[float] = field(default_factory=list)  # arrival time of each output

    def stream(self, name: str | None = None) -> str:
        return "".join(
            c["text"] for t, c in self.outputs if t == "stream" and (name is None or c["name"] == name)
        )

    def of(self, msg_type: str) -> list[dict]:
        return [c for t, c in self.outputs if t == msg_type]

    @property
    def status(self) -> str:
        return self.reply["status"]


def start_kernel(env: dict | None = None, **kw) -> tuple[KernelManager, object]:
    """Start the kernel from its kernelspec; return (manager, blocking client).

    A kernel that dies before it answers is started once more, as a frontend's restarter
    would: jupyter_client picks free ports and the kernel binds them later, so with kernels
    starting at the same moment another process may take one first; that kernel exits.
    """
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("HOPX_")}
    full_env.update(env or {})
    for attempt in (1, 2):
        km = KernelManager(kernel_name=KERNEL_NAME)
        km.start_kernel(env=full_env, **kw)
        kc = km.client()
        kc.start_channels()
        try:
            kc.wait_for_ready(timeout=60)
            return km, kc
        except RuntimeError:
            kc.stop_channels()
            if attempt == 2 or km.is_alive():
                km.shutdown_kernel(now=True)
                raise
            km.cleanup_resources()
    raise AssertionError("unreachable")


@contextlib.contextmanager
def running_kernel(env: dict | None = None, **kw):
    """``with running_kernel(env) as (km, kc):`` — started, and stopped whatever happens."""
    km, kc = start_kernel(env, **kw)
    try:
        yield km, kc
    finally:
        stop_kernel(km, kc)


def stop_kernel(km: KernelManager, kc) -> None:
    kc.stop_channels()
    if km.is_alive():
        km.shutdown_kernel(now=False)


def execute(
    kc,
    code: str,
    timeout: float = 60,
    allow_stdin: bool = False,
    stdin_answer=None,
    on_output=None,
) -> Cell:
    """Run one cell; collect its iopub outputs until idle and its reply.

    ``stdin_answer(content) -> str`` answers input requests; ``on_output(cell)`` is called
    after each output (e.g. to interrupt once a marker arrived).
    """
    msg_id = kc.execute(code, allow_stdin=allow_stdin)
    cell = Cell(reply={})
    deadline = time.monotonic() + timeout
    idle = False
    while not idle:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError(f"cell did not finish in {timeout}s: {code[:60]!r}")
        if stdin_answer is not None:
            try:
                req = kc.get_stdin_msg(timeout=0.01)
                kc.input(stdin_answer(req["content"]))
            except Empty:
                pass
        try:
            msg = kc.get_iopub_msg(timeout=min(remaining, 0.05 if stdin_answer else 1))
        except Empty:
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        kind = msg["header"]["msg_type"]
        if kind == "status":
            idle = msg["content"]["execution_state"] == "idle"
        elif kind != "execute_input":
            cell.outputs.append((kind, msg["content"]))
            cell.times.append(time.monotonic())
            if on_output is not None:
                on_output(cell)
    while True:  # skip stray replies (e.g. wait_for_ready's extra kernel_info_reply)
        reply = kc.get_shell_msg(timeout=max(1, deadline - time.monotonic()))
        if reply["parent_header"].get("msg_id") == msg_id:
            break
    cell.reply = reply["content"]
    return cell


def family(pid: int) -> list[psutil.Process]:
    """A process and all its descendants, including children in other sessions."""
    try:
        proc = psutil.Process(pid)
        return [proc, *proc.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def wait_gone(procs: list[psutil.Process], timeout: float = 10) -> list[psutil.Process]:
    """Wait until the processes have exited; return those still alive."""
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return [p for p in alive if p.is_running() and p.status() != psutil.STATUS_ZOMBIE]
