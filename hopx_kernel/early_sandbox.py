"""Cloud mode: create the sandbox while the kernel process is still importing ipykernel.

:func:`begin` is called first thing at process start (``kernelapp.launch``). A thread with
an event loop of its own asks the control plane for a sandbox, its token if the create
gave none, and the agent's ``/health`` — HTTP only: a WebSocket would belong to that
thread's loop. The session takes the outcome (:func:`take`, then :meth:`Early.result`)
and from then on owns the sandbox as if it had created it.

Never a leaked sandbox: one that nobody took, or that the session gave up before it was
ready (:meth:`Early.abandon`, e.g. a shutdown while it waited), is deleted on that
thread's loop, and :func:`discard` — run when the process ends — waits (bounded) for that.
"""

from __future__ import annotations

import concurrent.futures
import logging
import os
import threading
from typing import TYPE_CHECKING, Any

from .config import Config, from_env
from .errors import ConfigError

# asyncio, tornado and websockets (~0.1 s of imports) load on the early thread, while the
# main thread imports ipykernel: the create goes out sooner
if TYPE_CHECKING:
    import asyncio

    from .controlplane import ControlPlane, SandboxInfo

log = logging.getLogger(__name__)

#: Seconds :func:`discard` waits for a sandbox being created, then for its deletion.
DISCARD_WAIT = 15.0

_lock = threading.Lock()
_early: Early | None = None


def _control(config: Config) -> ControlPlane:
    from .controlplane import ControlPlane

    assert config.base_url and config.api_key
    return ControlPlane.at(config.base_url, config.api_key, config.ca_bundle)


class Early:
    """One sandbox being created ahead of the kernel, on a thread of its own."""

    def __init__(self, config: Config) -> None:
        self.config = config
        #: ``(SandboxInfo, health answer)`` once created and healthy
        self.future: concurrent.futures.Future[tuple[SandboxInfo, dict]] = concurrent.futures.Future()
        #: the ``SandboxInfo`` (with its token) once created, before ``/health`` is asked
        self.created: concurrent.futures.Future[SandboxInfo] = concurrent.futures.Future()
        self.state = "pending"  # → "taken" (a session waits for it) → "used" | "abandoned"
        self.deleting: concurrent.futures.Future | None = None
        self.loop: asyncio.AbstractEventLoop | None = None  # made by the thread
        self.started = threading.Event()  # the loop exists
        self.thread = threading.Thread(target=self._run, daemon=True, name="hopx-early-sandbox")

    def _run(self) -> None:
        import asyncio

        self.loop = asyncio.new_event_loop()
        self.started.set()
        asyncio.set_event_loop(self.loop)
        task = self.loop.create_task(self._create())
        task.add_done_callback(lambda t: t.cancelled() or t.exception())
        self.loop.run_forever()  # stopped by used(); else it idles, a daemon, till the process ends
        self.loop.close()

    async def _create(self) -> None:
        from .agent import AgentClient
        from .errors import Unreachable

        cfg = self.config
        self.future.set_running_or_notify_cancel()  # from here on it cannot be cancelled
        control = _control(cfg)
        try:
            info = await control.create(cfg.template, timeout_seconds=cfg.sandbox_timeout)
            try:
                if not info.auth_token:
                    info.auth_token, info.token_expires_at = await control.refresh_token(info.id)
                if not info.public_host:
                    raise Unreachable("HopX returned a sandbox without an address (public_host)")
                token = info.auth_token
                self.created.set_result(info)  # the session can open the first socket meanwhile
                agent = AgentClient(info.public_host, lambda: token, ca_bundle=cfg.ca_bundle)
                try:
                    health = await agent.health()
                finally:
                    agent.close()
            except BaseException:
                await _delete(control, info.id)
                raise
        except BaseException as exc:
            control.close()
            if not self.created.done():
                self.created.set_exception(exc)
            self.future.set_exception(exc)
            raise
        control.close()
        self.future.set_result((info, health))

    async def sandbox(self) -> SandboxInfo:
        """The created sandbox with its token, waited for on the caller's loop; its
        ``/health`` may still be asked (:meth:`result`).

        Raises:
            HopxKernelError: the create or the token failed (nothing is left).
        """
        return await self._wait(self.created)

    async def result(self) -> tuple[SandboxInfo, dict]:
        """The created sandbox and its health answer, waited for on the caller's loop.

        Raises:
            HopxKernelError: the create, token or health check failed (nothing is left).
        """
        return await self._wait(self.future)

    async def _wait(self, future: concurrent.futures.Future) -> Any:
        import asyncio

        try:
            # shielded: cancelling the wait must not cancel the create (it would go on unowned)
            return await asyncio.shield(asyncio.wrap_future(future))
        except asyncio.CancelledError:
            self.abandon()
            raise

    def used(self) -> None:
        """The session owns the sandbox now (it deletes it at shutdown); end the thread."""
        with _lock:
            if self.state != "taken":
                return
            self.state = "used"
        self.started.wait()
        assert self.loop is not None
        self.loop.call_soon_threadsafe(self.loop.stop)

    def abandon(self) -> None:
        """Nobody will use this sandbox: delete it once it exists (on the thread's loop)."""
        with _lock:
            if self.state in ("used", "abandoned"):
                return
            self.state = "abandoned"
        if self.future.done() and (self.future.cancelled() or self.future.exception() is not None):
            return  # nothing was created, or it was deleted where it failed
        import asyncio

        self.started.wait()
        assert self.loop is not None
        try:
            self.deleting = asyncio.run_coroutine_threadsafe(self._delete_when_created(), self.loop)
        except RuntimeError:  # the loop already ended: nothing was created on it
            pass

    async def _delete_when_created(self) -> None:
        import asyncio

        try:
            info, _ = await asyncio.wrap_future(self.future)
        except BaseException:
            return  # nothing was created, or it was deleted where it failed
        control = _control(self.config)
        try:
            await _delete(control, info.id)
        finally:
            control.close()


async def _delete(control: ControlPlane, sandbox_id: str) -> None:
    import asyncio

    from .errors import HopxKernelError

    try:
        await asyncio.wait_for(control.delete(sandbox_id), 5)
    except (HopxKernelError, asyncio.TimeoutError) as exc:
        msg = exc.line() if isinstance(exc, HopxKernelError) else "timed out"
        log.warning("could not delete sandbox %s: %s", sandbox_id, msg)


def begin(config: Config) -> None:
    """In cloud mode, start creating the sandbox now (once per process)."""
    global _early
    if config.mode != "cloud" or not config.base_url or not config.api_key:
        return
    with _lock:
        if _early is not None:
            return
        _early = Early(config)
    _early.thread.start()


def prestart() -> None:
    """:func:`begin` with the configuration from the environment (none if it is invalid:
    the kernel reports that on the first cell)."""
    try:
        config = from_env(os.environ)
    except ConfigError:
        return
    begin(config)


def take(config: Config) -> Early | None:
    """The sandbox :func:`begin` is creating for ``config``, now the caller's; None if
    there is none (another mode, another configuration, or already taken)."""
    with _lock:
        early = _early
        if early is None or early.state != "pending" or early.config != config:
            return None
        early.state = "taken"
        return early


def discard(timeout: float = DISCARD_WAIT) -> None:
    """At process end: delete an early sandbox nobody used, and wait (bounded) for it."""
    early = _early
    if early is None:
        return
    with _lock:
        pending = early.state == "pending"
    if pending:
        early.abandon()
    deleting = early.deleting
    if deleting is not None:
        try:
            deleting.result(timeout)
        except BaseException:  # timed out or failed: logged where it could be
            pass


def _reset_for_tests() -> Any:
    """Forget the process's early sandbox (tests run several sessions in one process)."""
    global _early
    with _lock:
        early, _early = _early, None
    return early


__all__ = ["Early", "begin", "discard", "prestart", "take"]
