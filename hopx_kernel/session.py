"""The one seam between the kernel and a sandbox.

A :class:`SandboxSession` owns where the sandbox comes from (embedded local server, HopX
cloud, or an attached sandbox), keeps its token fresh and its timeout extended, and opens
executions on it. What the kernel uses:

- lifecycle: :meth:`start`, :meth:`ready`, :meth:`shutdown`;
- cells: :meth:`open_execution`, :meth:`prepare_next`, :attr:`config`,
  :attr:`has_extensions`, :attr:`stateful`;
- losses: :meth:`lost`, :meth:`lost_hint`;
- everything else: :meth:`agent_call` (completion, inspection, files) and
  :meth:`describe` (``%hopx``).

Creation starts in the background when the kernel starts; the first cell waits for it.
A sandbox that is lost (expired, its process died, the local server was killed) is
dropped, and the next cell provisions a new one — except in attach mode, where there is
nothing we may create.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from . import early_sandbox, embedded, restart_handoff
from .agent import AgentClient, Execution
from .config import Config
from .controlplane import ControlPlane, SandboxInfo
from .errors import (
    ConfigError,
    ControlPlaneError,
    HopxKernelError,
    KeyRejected,
    SandboxExpired,
    Unreachable,
)
from .frames import Execute, Stream
from .local_server import LocalServer
from .transport import Transport

log = logging.getLogger(__name__)

#: Refresh the agent token when less than this is left (the official SDKs use 1 h), or
#: when less than a third of its lifetime is left, whichever is sooner for short tokens.
TOKEN_MARGIN = timedelta(hours=1)


@dataclass
class Live:
    """A provisioned sandbox."""

    info: SandboxInfo
    control: ControlPlane
    agent: AgentClient
    features: dict
    started: float
    token: str
    token_expires_at: datetime | None
    token_issued_at: datetime
    extended: float = 0.0  # monotonic time of the last timeout extension


class SandboxSession:
    """Provision, keep alive and tear down one sandbox.

    Args:
        config: the kernel configuration.
        error: set when the configuration was invalid: every use raises it instead of
            provisioning a sandbox.
        connector: how the control plane and agent clients reach HopX (:mod:`.transport`);
            None: each makes the real one of its own. Tests pass an in-memory fake.
    """

    def __init__(
        self, config: Config, *, error: ConfigError | None = None, connector: Transport | None = None
    ) -> None:
        self.config = config
        self.error = error
        self.connector = connector
        self._live: Live | None = None
        self._provisioning: asyncio.Future | None = None
        self._server: LocalServer | None = None
        self._keepalive: asyncio.Task | None = None
        self._closed = False
        #: how many sandboxes this session has had (the kernel channel's comms die with one)
        self.generation = 0
        #: False when the agent was found not to keep variables between executions
        self.stateful: bool | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> None:
        """Begin provisioning in the background."""
        if self._provisioning is None and self.error is None:
            self._provisioning = asyncio.ensure_future(self._provision())
            self._provisioning.add_done_callback(lambda f: f.cancelled() or f.exception())

    async def ready(self) -> Live:
        """The live sandbox, provisioning one if needed.

        Raises:
            HopxKernelError: provisioning failed; the next call tries again.
        """
        if self.error is not None:
            raise self.error
        if self._closed:
            raise HopxKernelError("The kernel is shutting down")
        if self._live is not None:
            await self._ensure_token(self._live)
            return self._live
        if self._provisioning is None:
            self.start()
        assert self._provisioning is not None
        try:
            return await asyncio.shield(self._provisioning)
        except HopxKernelError:
            self._provisioning = None  # try afresh next time
            raise

    async def _provision(self) -> Live:
        cfg = self.config
        if cfg.mode == "embedded":
            if self._server is None or not self._server.running():
                self._server = embedded.take_server(cfg)
            base_url, api_key = await embedded.wait_ready(self._server)
        else:
            assert cfg.base_url and cfg.api_key
            base_url, api_key = cfg.base_url, cfg.api_key
        control = ControlPlane.at(base_url, api_key, cfg.ca_bundle, connector=self.connector)
        live: Live | None = None
        # cloud mode: the create began at process start (early_sandbox), while ipykernel imported
        early = early_sandbox.take(cfg) if cfg.mode == "cloud" else None
        try:
            if cfg.mode == "attach":
                assert cfg.sandbox_id
                info = await control.get(cfg.sandbox_id)
                if info.status == "paused":
                    await control.resume(info.id)
            elif early is not None:
                info = await early.sandbox()  # its /health is still being asked, on that thread
            else:
                info = await control.create(cfg.template, timeout_seconds=cfg.sandbox_timeout)
            if not info.auth_token or cfg.mode == "attach":
                info.auth_token, info.token_expires_at = await control.refresh_token(info.id)
            if not info.public_host:
                raise Unreachable("HopX returned a sandbox without an address (public_host)")
            live = Live(
                info=info,
                control=control,
                agent=None,  # type: ignore[arg-type]
                features={},
                started=time.monotonic(),
                token=info.auth_token,
                token_expires_at=info.token_expires_at,
                token_issued_at=datetime.now(timezone.utc),
                extended=time.monotonic(),
            )
            live.agent = AgentClient(
                info.public_host,
                lambda: live.token,
                ping_interval=cfg.ping_interval,
                ping_timeout=cfg.ping_timeout,
                ca_bundle=cfg.ca_bundle,
                connector=self.connector,
            )
            # the first cell's socket opens while /health is asked: a round trip off the
            # start (if the agent is not up yet the spare fails quietly and the cell connects)
            live.agent.prepare()
            if early is not None:
                _, health = await early.result()
            else:
                health = await live.agent.health()
            live.features = health.get("features") or {}
            live.features.setdefault("version", health.get("version"))
            # one warm socket for every cell (docs/protocol.md §2.5); it needs extensions asked for
            live.agent.reuse = bool(
                live.features.get("stream_reuse") and live.features.get("stream_extensions")
            )
            if not live.features.get("stream_extensions"):
                # HopX's material does not promise state across /execute/stream calls: check once
                self.stateful = await self._probe_state(live)
            else:
                self.stateful = True
        except BaseException:
            if early is not None:
                early.abandon()  # deleted once created; a session-made one is left as before
            if live is not None and live.agent is not None:
                live.agent.close()
            control.close()
            raise
        if early is not None:
            early.used()
        self._live = live
        self.generation += 1
        self._keepalive = asyncio.ensure_future(self._keep_alive(live))
        live.agent.prepare()
        log.info("sandbox %s ready (%s mode)", info.id, cfg.mode)
        return live

    async def _probe_state(self, live: Live) -> bool | None:
        """Set a marker in one execution and look for it in the next (docs/protocol.md §2.1)."""
        marker = "_hopx_kernel_state_probe"
        try:
            for code in (
                f"import builtins; builtins.{marker} = 1",
                f"import builtins; print(hasattr(builtins, {marker!r}))",
            ):
                execution = await live.agent.open_execution(Execute(code=code))
                out = []
                try:
                    async for batch in execution.batches():
                        out += [f.data for f in batch if isinstance(f, Stream) and f.name == "stdout"]
                finally:
                    await execution.close()
            return "True" in "".join(out)
        except HopxKernelError as exc:
            log.warning("could not check whether the sandbox keeps state: %s", exc.line())
            return None

    async def _ensure_token(self, live: Live, force: bool = False) -> None:
        expires = live.token_expires_at
        if expires is None and not force:
            return
        now = datetime.now(timezone.utc)
        if not force:
            assert expires is not None
            lifetime = expires - live.token_issued_at
            margin = min(TOKEN_MARGIN, lifetime / 3)
            if expires - now > margin:
                return
        token, expires_at = await live.control.refresh_token(live.info.id)
        live.token, live.token_expires_at, live.token_issued_at = token, expires_at, now
        log.info("refreshed the sandbox token")

    async def _keep_alive(self, live: Live) -> None:
        """Extend the sandbox's timeout and refresh its token while the kernel lives."""
        period = self.keepalive_period
        while self._live is live:
            await asyncio.sleep(min(period, 60.0))
            await self.keepalive_once(live)

    @property
    def keepalive_period(self) -> float:
        """Seconds between timeout extensions: a third of the sandbox timeout, at least 20."""
        return max(self.config.sandbox_timeout / 3, 20.0)

    async def keepalive_once(self, live: Live) -> None:
        """One keepalive step: refresh the token if due, extend the timeout if a period has
        passed since the last extension; an expired sandbox is dropped."""
        cfg = self.config
        try:
            await self._ensure_token(live)
            if cfg.mode != "attach" and time.monotonic() - live.extended >= self.keepalive_period:
                await live.control.set_timeout(live.info.id, cfg.sandbox_timeout)
                live.info.expires_at = datetime.now(timezone.utc) + timedelta(seconds=cfg.sandbox_timeout)
                live.extended = time.monotonic()
        except SandboxExpired:
            self.drop()
        except HopxKernelError as exc:
            log.warning("keepalive failed: %s", exc.line())

    def drop(self) -> None:
        """Forget the current sandbox (it is gone); the next cell provisions a new one."""
        live, self._live = self._live, None
        self._provisioning = None
        if self._keepalive is not None:
            self._keepalive.cancel()
            self._keepalive = None
        if live is not None:
            live.agent.close()
            live.control.close()

    # -- use -----------------------------------------------------------------------------

    @property
    def has_extensions(self) -> bool:
        return bool(self._live and self._live.features.get("stream_extensions"))

    @property
    def has_channel(self) -> bool:
        """Whether the live sandbox's agent has the kernel channel (docs/protocol.md §2.4)."""
        return bool(self._live and self._live.features.get("kernel_channel"))

    @property
    def uses_channel(self) -> bool:
        """Whether this kernel talks to the live sandbox over the kernel channel: its agent
        has the channel, and the extensions the channel goes with."""
        return self.has_extensions and self.has_channel

    @property
    def embedded(self) -> bool:
        """Whether the sandbox comes from this package's local server (embedded mode)."""
        return isinstance(self.config, Config) and self.config.mode == "embedded"

    @property
    def is_live(self) -> bool:
        """Whether a sandbox is ready now."""
        return self._live is not None

    @property
    def has_debugger(self) -> bool:
        """Whether debug requests can reach a debugger in the sandbox's kernel."""
        return self.has_channel and bool(self._live and self._live.features.get("debugger"))

    async def settled(self, timeout: float) -> None:
        """Wait (bounded, never raising) until the first sandbox is ready or has failed."""
        if self._live is None and self._provisioning is None:
            self.start()
        if self._live is not None or self._provisioning is None:
            return
        try:
            await asyncio.wait_for(asyncio.shield(self._provisioning), timeout)
        except BaseException:  # failed or slow: the question is answered without it
            pass

    @property
    def can_replace(self) -> bool:
        """Whether a lost sandbox can be replaced by a new one."""
        return isinstance(self.config, Config) and self.config.mode != "attach"

    async def open_execution(self, frame: Execute) -> Execution:
        """Open a stream for one cell on the live sandbox.

        Raises:
            HopxKernelError: one readable line; a lost sandbox has been dropped first.
        """
        try:
            live = await self.ready()
            try:
                return await live.agent.open_execution(frame)
            except KeyRejected:
                # the agent token may have expired under us: refresh once, retry. The
                # refresh itself may find the sandbox gone (410), which must drop it too.
                await self._ensure_token(live, force=True)
                return await live.agent.open_execution(frame)
        except (SandboxExpired, Unreachable) as exc:
            self.lost(exc)
            raise

    def lost(self, exc: HopxKernelError | None = None) -> None:
        """The sandbox is gone (expired, died, server killed): drop it, and give ``exc``
        (the error the user will see, if it is ours to word) the hint of what happens next."""
        self.drop()
        if self.embedded:
            if self._server is not None and not self._server.running():
                embedded.stop_server(self._server)  # it died: reap it and remove its folder
                self._server = None  # start another next time
        if exc is not None:
            exc.hint = self.lost_hint

    @property
    def lost_hint(self) -> str:
        """What happens after the sandbox is lost, for the user's one error line."""
        if self.can_replace:
            return "The next cell runs in a new sandbox; variables and imports from before are gone."
        return "Attach to a running sandbox with HOPX_SANDBOX_ID, then restart the kernel."

    def prepare_next(self) -> None:
        """Get the next cell's connection ready while the user reads this one's output."""
        if self._live is not None:
            self._live.agent.prepare()

    async def agent_call(self, method: str, path: str, **kw):
        """An HTTP call to the live sandbox's agent (completion, files, ...)."""
        live = await self.ready()
        return await live.agent.request(method, path, **kw)

    def describe(self) -> dict:
        """Facts for ``%hopx``: mode, sandbox id, agent version, template, uptime, timeout."""
        cfg = self.config
        if self.error is not None:
            return {"mode": "misconfigured", "error": self.error.line()}
        out: dict = {"mode": cfg.mode, "control_plane": cfg.base_url or "embedded local server"}
        live = self._live
        if live is None:
            out["sandbox"] = "not started yet" if self._provisioning is None else "starting"
            return out
        now = datetime.now(timezone.utc)
        out.update(
            sandbox_id=live.info.id,
            template=live.info.template_name or cfg.template,
            agent_version=live.features.get("version"),
            agent=live.info.public_host,
            uptime_seconds=round(time.monotonic() - live.started, 1),
            extensions=bool(live.features.get("stream_extensions")),
            isolation=live.features.get("isolation"),
        )
        if live.info.expires_at is not None:
            out["timeout_remaining_seconds"] = max(0, int((live.info.expires_at - now).total_seconds()))
        return out

    async def shutdown(self, handoff: Path | None = None) -> None:
        """Delete the sandbox (unless attached) and stop the embedded server, or (a restart,
        ``handoff`` given) hand the server over to the next kernel process there."""
        self._closed = True
        if self._provisioning is not None and not self._provisioning.done():
            self._provisioning.cancel()
        live = self._live
        if live is not None:
            # no socket opens from here on: a spare or warm connect that reached the agent
            # after the delete was answered 410 (and logged as a warning by the local server)
            live.agent.close()
        if live is not None and isinstance(self.config, Config) and self.config.mode != "attach":
            try:
                await asyncio.wait_for(live.control.delete(live.info.id), 5)
            except (HopxKernelError, asyncio.TimeoutError) as exc:
                msg = exc.line() if isinstance(exc, HopxKernelError) else "timed out"
                log.warning("could not delete sandbox %s: %s", live.info.id, msg)
        self.drop()
        if self._server is not None:
            if handoff is None or not await asyncio.to_thread(restart_handoff.offer, self._server, handoff):
                await asyncio.to_thread(embedded.stop_server, self._server)
            self._server = None


__all__ = ["Live", "SandboxSession", "ControlPlaneError"]
