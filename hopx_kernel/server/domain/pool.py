"""A warm pool of started IPython kernels, so creating a sandbox does not wait for a boot.

Each pooled entry already has its sandbox id and folder (``<root>/<id>``), and its
kernel runs with that folder as working directory. One background filler keeps
``size`` entries ready, plus one for every caller waiting in :meth:`KernelPool.take`.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import resource
import secrets
import shutil
from collections.abc import Callable
from pathlib import Path

from ..runtime.ipython import IPythonRunner
from ..server_errors import ServerError
from .paths import private_folders

log = logging.getLogger(__name__)

Entry = tuple[str, Path, IPythonRunner]
#: Consecutive start failures after which the pool stops retrying and reports them.
MAX_FAILURES = 3
#: File descriptors a new kernel needs free in the server (its sockets, pipes and files,
#: with room to spare); with fewer, creating one is refused at once with 503.
FD_HEADROOM = 64


def free_fds() -> int | None:
    """How many more file descriptors this process may open (None when unknown)."""
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    if soft == resource.RLIM_INFINITY:
        return None
    try:
        return soft - len(os.listdir("/proc/self/fd"))
    except OSError:
        return None


def _out_of_fds() -> ServerError:
    return ServerError(
        503,
        "SERVICE_UNAVAILABLE",
        "the local sandbox server is out of file "
        "descriptors (its open-file limit, ulimit -n); end a sandbox or raise "
        "the limit",
    )


def new_sandbox_id() -> str:
    """A fresh sandbox id."""
    return "local-" + secrets.token_hex(6)


class KernelPool:
    """Ready kernels with their folders.

    Args:
        root: the folder under which sandbox folders are made.
        size: how many ready kernels to keep (0 = start one per create).
        make_runner: builds an (unstarted) runner for a sandbox folder.
    """

    def __init__(
        self, root: Path, size: int, make_runner: Callable[[Path], IPythonRunner], refill: bool = True
    ):
        self.root = root
        self.size = max(0, size)
        #: False: the first ``size`` kernels are started ahead, later ones only on demand
        self.refill = refill
        self._started_ahead = 0
        self._make_runner = make_runner
        self._ready: asyncio.Queue[Entry] = asyncio.Queue()
        self._waiting = 0
        self._filler: asyncio.Task | None = None
        self._starting: set[asyncio.Task] = set()
        self._failures = 0
        self._last_error: Exception | None = None
        self._closed = False
        self._wanted = asyncio.Event()  # a caller began waiting in take()
        self._warming: set[asyncio.Task] = set()

    async def _make(self) -> Entry:
        free = free_fds()
        if free is not None and free < FD_HEADROOM:
            raise _out_of_fds()
        sandbox_id = new_sandbox_id()
        folder = self.root / sandbox_id
        for private in private_folders(folder):  # /workspace, /tmp, home
            private.mkdir(parents=True, exist_ok=private != folder)
        runner = self._make_runner(folder)
        try:
            await runner.start()
        except OSError as exc:
            await runner.shutdown()
            shutil.rmtree(folder, ignore_errors=True)
            if exc.errno in (errno.EMFILE, errno.ENFILE):
                raise _out_of_fds() from exc
            raise
        except BaseException:
            await runner.shutdown()
            for private in private_folders(folder):
                shutil.rmtree(private, ignore_errors=True)
            raise
        return sandbox_id, folder, runner

    def start(self) -> None:
        """Begin filling the pool in the background."""
        self._kick()

    def prepare_one(self) -> None:
        """Start one more kernel ahead now, also without refill (a restarting kernel's
        successor will ask for a sandbox in a moment)."""
        if not self.refill:
            self.size += 1
        self._kick()

    def _target(self) -> int:
        """How many ready kernels the pool wants now."""
        ahead = self.size if self.refill else max(0, self.size - self._started_ahead)
        return ahead + self._waiting

    def _kick(self) -> None:
        if self._closed or (self._filler is not None and not self._filler.done()):
            return
        if self._ready.qsize() < self._target():
            self._filler = asyncio.get_running_loop().create_task(self._fill())

    async def _fill(self) -> None:
        while not self._closed and self._ready.qsize() < self._target():
            if not self._waiting:
                self._started_ahead += 1
            task = asyncio.ensure_future(self._make())
            self._starting.add(task)
            try:
                entry = await task
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self._failures += 1
                self._last_error = exc
                if isinstance(exc, ServerError) and exc.status == 503:
                    self._failures = MAX_FAILURES  # not worth retrying: refuse at once
                log.error("could not start an IPython kernel: %s", exc)
                if self._failures >= MAX_FAILURES:
                    return
                await asyncio.sleep(0.5 * self._failures)
                continue
            finally:
                self._starting.discard(task)
            self._failures = 0
            if self.refill and not self._waiting and not self._closed:
                # nobody waits for it: load its completer now, not when it is idle in
                # someone's sandbox, where their first cell would wait behind it
                try:
                    await self._warm(entry[2])
                except BaseException:  # closing: the kernel is in no list yet, stop it here
                    await self._discard(entry)
                    raise
            if self._closed:
                await self._discard(entry)
                return
            self._ready.put_nowait(entry)

    async def _warm(self, runner: IPythonRunner) -> None:
        """Wait for ``runner``'s warm-up, or until a create waits: that one takes the
        kernel at once (its first cell may then wait for the rest of the warm-up)."""
        self._wanted.clear()
        warm = asyncio.ensure_future(runner.warm())
        self._warming.add(warm)
        warm.add_done_callback(self._warming.discard)
        wanted = asyncio.ensure_future(self._wanted.wait())
        try:
            await asyncio.wait({warm, wanted}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            wanted.cancel()

    async def take(self) -> Entry:
        """A started kernel with its sandbox id and folder.

        Raises:
            ServerError: 503 when kernels keep failing to start.
        """
        if self._closed:
            raise ServerError(503, "SERVICE_UNAVAILABLE", "the local sandbox server is stopping")
        while True:
            if self._failures >= MAX_FAILURES and self._ready.empty():
                self._failures = 0  # let a later call try again
                if isinstance(self._last_error, ServerError):
                    raise self._last_error
                raise ServerError(
                    503,
                    "SERVICE_UNAVAILABLE",
                    f"the local sandbox could not start Python: {self._last_error}",
                )
            self._waiting += 1
            self._wanted.set()
            try:
                self._kick()
                getter = asyncio.ensure_future(self._ready.get())
                filler = self._filler
                waits = {getter} | ({filler} if filler is not None else set())
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if not getter.done():
                    getter.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await getter
                    if not getter.cancelled():
                        self._ready.put_nowait(getter.result())
                    continue
                entry = getter.result()
            finally:
                self._waiting -= 1
            self._kick()
            if await entry[2].check_alive() is None:
                return entry
            await self._discard(entry)

    @staticmethod
    async def _discard(entry: Entry) -> None:
        _, folder, runner = entry
        await runner.shutdown()
        for private in private_folders(folder):
            await asyncio.to_thread(shutil.rmtree, private, True)

    async def close(self) -> None:
        """Stop filling and stop every pooled kernel."""
        self._closed = True
        for warm in list(self._warming):
            warm.cancel()
        if self._filler is not None:
            self._filler.cancel()
            with contextlib.suppress(BaseException):
                await self._filler
        for task in list(self._starting):
            with contextlib.suppress(BaseException):
                await task
                await self._discard(task.result())
        while not self._ready.empty():
            await self._discard(self._ready.get_nowait())
