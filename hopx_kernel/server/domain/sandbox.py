"""Sandboxes and the registry that creates, finds, expires and ends them.

A :class:`Sandbox` is a folder, an IPython kernel, its bearer tokens and its settings.
The :class:`Registry` owns every live sandbox and remembers ended ones, so that a late
call gets "410: expired" with the reason rather than a bare 404. Agent-plane requests
find their sandbox by bearer token (:meth:`Registry.by_token`); tokens are indexed by
their SHA-256, so a lookup never compares secrets byte by byte.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import shutil
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path

from ..runtime.ipython import IPythonRunner
from ..server_errors import SandboxGone, ServerError
from .channel_hub import ChannelHub
from .paths import private_folders
from .pool import KernelPool
from .processes import ProcessTable
from .tokens import new_token

log = logging.getLogger(__name__)

#: Templates the local sandbox offers; "python" is an alias of "code-interpreter".
TEMPLATES = {"code-interpreter": "code-interpreter", "python": "code-interpreter"}
TEMPLATE_ID = "local-code-interpreter"
#: Lifetime of an agent token. The SDK refreshes when under 1 h is left.
TOKEN_TTL = 24 * 3600.0
#: How many ended sandboxes are remembered for 410 answers.
REMEMBER_ENDED = 10_000
#: Live sandboxes one server holds by default (``--max-sandboxes``); each costs a Python
#: process (~50 MB) and ~25 file descriptors.
MAX_SANDBOXES = 32


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass(eq=False)
class Sandbox:
    """One live sandbox.

    Attributes:
        env_vars: variables later executions see (``/env``), on top of the base env.
        applied_env: the part of ``env_vars`` already set inside the IPython kernel.
        lock: one execution at a time, in arrival order (asyncio.Lock is FIFO).
    """

    id: str
    folder: Path
    runner: IPythonRunner
    template_name: str
    internet_access: bool = True
    created_at: float = field(default_factory=time.time)
    timeout_seconds: int | None = None
    expires_at: float | None = None
    status: str = "running"
    env_vars: dict[str, str] = field(default_factory=dict)
    applied_env: dict[str, str] = field(default_factory=dict)
    tokens: dict[str, float] = field(default_factory=dict)
    auth_token: str = ""
    token_expires_at: float = 0.0
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    end_reason: str | None = None
    #: the kernel channel's connections and order bookkeeping (docs/protocol.md §2.4)
    hub: ChannelHub = field(default_factory=ChannelHub)
    #: commands and background executions (``/commands/*``, ``/execute/background``)
    processes: ProcessTable = field(default_factory=ProcessTable)

    def __post_init__(self) -> None:
        self.runner.on_unrouted = self.hub.from_kernel

    @property
    def ended(self) -> bool:
        """Whether the sandbox was ended (its kernel is gone or going)."""
        return self.end_reason is not None


class Registry:
    """All sandboxes of one server.

    Args:
        pool: where ready kernels come from.
    """

    def __init__(
        self, pool: KernelPool, token_ttl: float = TOKEN_TTL, max_sandboxes: int = MAX_SANDBOXES
    ) -> None:
        self.token_ttl = token_ttl
        self.max_sandboxes = max_sandboxes
        self._creating = 0
        self._pool = pool
        self._live: dict[str, Sandbox] = {}
        self._tokens: dict[str, str] = {}
        self._ended: OrderedDict[str, str] = OrderedDict()
        self._ended_tokens: OrderedDict[str, str] = OrderedDict()
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task] = set()

    # ------------------------------------------------------------ create / find

    async def create(
        self,
        template_name: str,
        *,
        timeout_seconds: int | None = None,
        internet_access: bool = True,
        env_vars: dict[str, str] | None = None,
    ) -> Sandbox:
        """A new running sandbox, with a kernel from the warm pool.

        Raises:
            ServerError: 429 when ``max_sandboxes`` are live (or being made).
        """
        if len(self._live) + self._creating >= self.max_sandboxes:
            raise ServerError(
                429,
                "RATE_LIMITED",
                f"this local sandbox server already runs {self.max_sandboxes} sandboxes, its "
                "cap (--max-sandboxes); delete one (DELETE /v1/sandboxes/<id>) and retry",
                {"max_sandboxes": self.max_sandboxes},
            )
        self._creating += 1
        try:
            sandbox_id, folder, runner = await self._pool.take()
        finally:
            self._creating -= 1
        sandbox = Sandbox(
            id=sandbox_id,
            folder=folder,
            runner=runner,
            template_name=template_name,
            internet_access=internet_access,
            env_vars=dict(env_vars or {}),
        )
        self._live[sandbox.id] = sandbox
        self.issue_token(sandbox)
        self.set_timeout(sandbox, timeout_seconds)
        log.info("sandbox %s created", sandbox.id)
        return sandbox

    def get(self, sandbox_id: str) -> Sandbox:
        """The live sandbox with this id.

        Raises:
            SandboxGone: it existed and was ended (410).
            ServerError: 404, no such sandbox.
        """
        sandbox = self._live.get(sandbox_id)
        if sandbox is not None:
            return sandbox
        if sandbox_id in self._ended:
            raise SandboxGone(self._ended[sandbox_id])
        raise ServerError(404, "RESOURCE_NOT_FOUND", f"sandbox {sandbox_id!r} not found")

    def by_token(self, token: str | None) -> Sandbox:
        """The live sandbox this bearer token opens.

        Raises:
            SandboxGone: the token belonged to an ended sandbox (410).
            ServerError: 401 for a missing, unknown or expired token.
        """
        if not token:
            raise ServerError(401, "AUTHENTICATION_REQUIRED", "missing 'Authorization: Bearer <auth_token>'")
        digest = _digest(token)
        sandbox_id = self._tokens.get(digest)
        if sandbox_id is None:
            if digest in self._ended_tokens:
                raise SandboxGone(self._ended[self._ended_tokens[digest]])
            raise ServerError(401, "INVALID_TOKEN", "the bearer token is not valid for any sandbox")
        sandbox = self._live[sandbox_id]
        if sandbox.tokens.get(digest, 0.0) < time.time():
            raise ServerError(
                401, "TOKEN_EXPIRED", "the sandbox token expired; refresh it with token/refresh"
            )
        return sandbox

    def list(self) -> list[Sandbox]:
        """Every live sandbox, oldest first."""
        return sorted(self._live.values(), key=lambda s: s.created_at)

    # ------------------------------------------------------------ settings

    def issue_token(self, sandbox: Sandbox) -> tuple[str, float]:
        """A fresh agent token for ``sandbox``; earlier tokens stay valid until expiry."""
        token = new_token()
        expires = time.time() + self.token_ttl
        now = time.time()
        for digest, expiry in list(sandbox.tokens.items()):
            if expiry < now:
                del sandbox.tokens[digest]
                self._tokens.pop(digest, None)
        digest = _digest(token)
        sandbox.tokens[digest] = expires
        self._tokens[digest] = sandbox.id
        sandbox.auth_token, sandbox.token_expires_at = token, expires
        return token, expires

    def set_timeout(self, sandbox: Sandbox, seconds: int | None) -> None:
        """End ``sandbox`` ``seconds`` from now (None or 0: never)."""
        timer = self._timers.pop(sandbox.id, None)
        if timer is not None:
            timer.cancel()
        sandbox.timeout_seconds = seconds or None
        sandbox.expires_at = None
        if seconds:
            sandbox.expires_at = time.time() + seconds
            reason = f"sandbox {sandbox.id} expired after {seconds} s; create a new one"
            self._timers[sandbox.id] = asyncio.get_running_loop().call_later(
                seconds, self._spawn_end, sandbox.id, reason
            )

    def _spawn_end(self, sandbox_id: str, reason: str) -> None:
        task = asyncio.get_running_loop().create_task(self.end(sandbox_id, reason))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ------------------------------------------------------------ end

    async def end(self, sandbox_id: str, reason: str) -> None:
        """End a sandbox: stop its kernel, remove its folder, remember why."""
        sandbox = self._live.pop(sandbox_id, None)
        if sandbox is None:
            return
        sandbox.end_reason = reason
        sandbox.status = "stopped"
        self._ended[sandbox_id] = reason
        for digest in sandbox.tokens:
            self._tokens.pop(digest, None)
            self._ended_tokens[digest] = sandbox_id
        while len(self._ended) > REMEMBER_ENDED:
            self._ended.popitem(last=False)
        while len(self._ended_tokens) > REMEMBER_ENDED:
            self._ended_tokens.popitem(last=False)
        timer = self._timers.pop(sandbox_id, None)
        if timer is not None:
            timer.cancel()
        sandbox.hub.close()
        await sandbox.processes.kill_all()
        await sandbox.runner.shutdown()
        for private in private_folders(sandbox.folder):  # /workspace, /tmp, home
            await asyncio.to_thread(shutil.rmtree, private, True)
        log.info("sandbox %s ended: %s", sandbox_id, reason)

    async def end_all(self, reason: str = "the local sandbox server stopped") -> None:
        """End every live sandbox (at shutdown)."""
        await asyncio.gather(*(self.end(i, reason) for i in list(self._live)))
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
