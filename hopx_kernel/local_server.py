"""A handle on one local sandbox server process (``hopx-kernel serve``).

The server prints one JSON line when it listens, ``{"base_url": ..., "api_key": ...}``;
:meth:`LocalServer.ready` reads it once and keeps it. The embedded kernel, the tests and
the bench all start and stop servers through this class.
"""

from __future__ import annotations

import json
import os
import selectors
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from typing import IO

from .errors import Unreachable


class LocalServer:
    """One ``python -m hopx_kernel.server`` process.

    Args:
        proc: the process, started with ``stdout=PIPE``.
        root: a folder removed by :meth:`stop` (also when the server was killed).
    """

    def __init__(
        self, proc: subprocess.Popen | None, root: str | None = None, pid: int | None = None
    ) -> None:
        self.proc = proc
        self.root = root
        self._pid = proc.pid if proc is not None else pid
        self._info: tuple[str, str] | None = None

    @classmethod
    def adopted(cls, pid: int, base_url: str, api_key: str, root: str | None) -> LocalServer:
        """A server that another process started and handed over (a kernel restart,
        :mod:`hopx_kernel.restart_handoff`): not our child, so it is watched by pid."""
        server = cls(None, root, pid)
        server._info = (base_url, api_key)
        return server

    @classmethod
    def start(
        cls,
        args: Sequence[str] = (),
        *,
        env: Mapping[str, str] | None = None,
        stderr: int | IO | None = None,
        root: str | None = None,
        cwd: str | None = None,
        command: Sequence[str] | None = None,
    ) -> LocalServer:
        """Spawn the server (``--port 0`` unless ``args`` names one) in its own session;
        returns at once. ``root`` is removed by :meth:`stop`.

        ``command`` runs the server another way, e.g. ``["hopx-kernel", "serve"]`` (default:
        this interpreter's ``-m hopx_kernel.server``, which is what ``serve`` runs).
        """
        argv = list(command or [sys.executable, "-m", "hopx_kernel.server"])
        if "--port" not in args:
            argv += ["--port", "0"]
        proc = subprocess.Popen(
            [*argv, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            env=None if env is None else dict(env),
            cwd=cwd,
            start_new_session=True,
            close_fds=True,
        )
        return cls(proc, root)

    def __repr__(self) -> str:
        return f"<LocalServer pid={self._pid} {self._info[0] if self._info else 'starting'}>"

    # -- the ready line --------------------------------------------------------------------

    def ready(self, timeout: float = 60.0) -> tuple[str, str]:
        """``(base_url, api_key)`` from the server's ready line (read once, then kept).

        Raises:
            Unreachable: the server exited, printed something else, or said nothing in time;
                it has been stopped.
        """
        if self._info is not None:
            return self._info
        assert self.proc is not None  # an adopted server came with its info
        line = self._read_line(timeout)
        if line is None:
            self.stop()
            raise Unreachable(
                f"The local sandbox server did not start within {timeout:.0f} s",
                "Restart the kernel; if it persists, run `hopx-kernel serve` to see its log.",
            )
        try:
            info = json.loads(line)
            self._info = (str(info["base_url"]), str(info["api_key"]))
        except (ValueError, KeyError, TypeError) as exc:
            code = self.proc.poll()
            if code is None and not line.endswith(b"\n"):  # its stdout ended: it is exiting
                try:
                    code = self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass
            self.stop()
            raise Unreachable(
                "The local sandbox server failed to start"
                + (f" (exit status {code})" if code is not None else ""),
                "Run `hopx-kernel serve` in a terminal to see why.",
            ) from exc
        return self._info

    def _read_line(self, timeout: float) -> bytes | None:
        """The first line of stdout (b"" at end of file); None when none came in time."""
        assert self.proc is not None and self.proc.stdout is not None
        fd = self.proc.stdout.fileno()
        deadline = time.monotonic() + timeout
        line = b""
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while not line.endswith(b"\n"):
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    return None
                chunk = os.read(fd, 4096)
                if not chunk:
                    return line  # exited: whatever it said is not a ready line
                line += chunk
        return line

    @property
    def base_url(self) -> str:
        return self.ready()[0]

    @property
    def api_key(self) -> str:
        return self.ready()[1]

    # -- the process -----------------------------------------------------------------------

    @property
    def pid(self) -> int:
        assert self._pid is not None
        return self._pid

    @property
    def returncode(self) -> int | None:
        """The exit status, None while it runs (an adopted server's status is unknown: 0)."""
        if self.proc is not None:
            return self.proc.poll()
        return None if _alive(self.pid) else 0

    def running(self) -> bool:
        return self.returncode is None

    def wait(self, timeout: float | None = None) -> int:
        """Wait for the exit; raises :class:`subprocess.TimeoutExpired` after ``timeout``."""
        if self.proc is not None:
            return self.proc.wait(timeout)
        deadline = None if timeout is None else time.monotonic() + timeout
        while _alive(self.pid):
            if deadline is not None and time.monotonic() >= deadline:
                raise subprocess.TimeoutExpired(f"pid {self.pid}", timeout or 0)
            time.sleep(0.02)
        return 0

    def kill(self) -> None:
        """SIGKILL the server's whole process group (it and its sandbox kernels)."""
        try:
            os.killpg(self.pid, signal.SIGKILL)
        except OSError:
            try:
                os.kill(self.pid, signal.SIGKILL)
            except OSError:
                pass

    def stop(self, grace: float = 3.0) -> int | None:
        """SIGTERM the server (it ends its sandboxes), SIGKILL its group if it lingers past
        ``grace``, close its pipe and remove :attr:`root`; returns the exit status."""
        if self.running():
            try:
                os.kill(self.pid, signal.SIGTERM)
                self.wait(grace)
            except subprocess.TimeoutExpired:
                self.kill()
                try:
                    self.wait(10)
                except subprocess.TimeoutExpired:
                    pass
            except OSError:
                pass
        if self.proc is not None and self.proc.stdout is not None:
            self.proc.stdout.close()
        if self.root:
            shutil.rmtree(self.root, ignore_errors=True)
        return self.returncode


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


__all__ = ["LocalServer"]
