"""SandboxSession over the in-memory transport: provisioning, token refresh, keepalive,
losses and replacement, shutdown (no sockets; the real-socket paths are in
tests/kernel/test_cloud_mode.py and tests/kernel/test_lifecycle.py)."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone

import pytest
from websockets.datastructures import Headers
from websockets.exceptions import InvalidStatus
from websockets.http11 import Response

from hopx_kernel.config import Config
from hopx_kernel.errors import KeyRejected, SandboxExpired, Unreachable
from hopx_kernel.frames import Execute, Stream
from hopx_kernel.session import SandboxSession

from .support.fake_transport import COMPLETE, HEALTH, FakeHopx, sandbox

API = "https://api.fake.hopx.test"
EXTENDED = {**HEALTH, "features": {"stream_extensions": True, "stream_reuse": True}}


def scenario(fn, *, mode: str = "cloud", health: dict = EXTENDED):
    async def main():
        hopx = FakeHopx()
        hopx.routes[("GET", "/health")] = (200, health)
        config = Config(
            mode=mode, api_key="key-1", base_url=API, sandbox_id="sb-1" if mode == "attach" else None
        )
        session = SandboxSession(config, connector=hopx)
        try:
            return await fn(hopx, session)
        finally:
            await session.shutdown()

    return asyncio.run(main())


async def cell(session: SandboxSession, code: str = "x") -> str:
    execution = await session.open_execution(Execute(code=code))
    text = ""
    async for batch in execution.batches():
        text += "".join(f.data for f in batch if isinstance(f, Stream))
    await execution.close()
    return text


def test_provisioning_creates_a_sandbox_asks_health_and_runs_a_cell():
    async def fn(hopx, session):
        hopx.replies.append([{"type": "stdout", "data": "hi\n"}, COMPLETE])
        assert await cell(session) == "hi\n"
        create = hopx.log[0]
        assert create[:2] == ("POST", "/v1/sandboxes") and create[2]["X-API-Key"] == "key-1"
        assert ("GET", "/health") == hopx.calls("GET")[0][:2]
        assert hopx.calls("GET")[0][2]["Authorization"] == "Bearer tok-1"
        assert session.has_extensions and session.stateful is True
        assert session.describe()["sandbox_id"] == "sb-1"

    scenario(fn)


def test_an_agent_without_extensions_is_probed_for_state_once():
    async def fn(hopx, session):
        hopx.replies.extend([[COMPLETE], [{"type": "stdout", "data": "True\n"}, COMPLETE]])
        await session.ready()
        assert session.stateful is True and not session.has_extensions
        probes = [ws.sent[0]["code"] for ws in hopx.sockets if ws.sent]
        assert len(probes) == 2 and "_hopx_kernel_state_probe" in probes[1]

    scenario(fn, health=HEALTH)


def test_a_failed_create_is_reported_and_the_next_cell_tries_again():
    async def fn(hopx, session):
        hopx.routes[("POST", "/v1/sandboxes")] = (401, {"error": {"message": "bad key"}})
        with pytest.raises(KeyRejected):
            await session.ready()
        hopx.routes[("POST", "/v1/sandboxes")] = (201, sandbox())
        await session.ready()
        assert len(hopx.calls("POST")) == 2

    scenario(fn)


def test_a_token_near_its_expiry_is_refreshed_before_the_next_cell_uses_it():
    soon = (datetime.now(timezone.utc) + timedelta(seconds=30)).isoformat()
    later = (datetime.now(timezone.utc) + timedelta(hours=3)).isoformat()

    async def fn(hopx, session):
        hopx.routes[("POST", "/v1/sandboxes")] = (201, sandbox(token_expires_at=soon))
        hopx.routes[("POST", "/v1/sandboxes/sb-1/token/refresh")] = (
            200,
            {"auth_token": "tok-2", "token_expires_at": later},
        )
        live = await session.ready()
        assert live.token == "tok-1"
        live.token_issued_at -= timedelta(minutes=5)  # as if issued 5 min ago
        await cell(session)  # 30 s left, less than a third of its life: refreshed first
        assert live.token == "tok-2"
        await session.agent_call("GET", "/health")
        assert hopx.calls("GET")[-1][2]["Authorization"] == "Bearer tok-2"
        await cell(session)  # three hours left: no second refresh
        refreshes = [c for c in hopx.calls("POST") if c[1].endswith("/token/refresh")]
        assert len(refreshes) == 1

    scenario(fn)


def test_a_connect_refused_as_401_refreshes_the_token_and_retries_once():
    async def fn(hopx, session):
        real = hopx.websocket

        async def expired_token_refused(url, **options):
            if options["additional_headers"]["Authorization"] == "Bearer tok-1":
                hopx.log.append(("WS", url, options["additional_headers"]))
                raise InvalidStatus(Response(401, "Unauthorized", Headers(), b"{}"))
            return await real(url, **options)

        hopx.websocket = expired_token_refused
        assert await cell(session) == ""
        refreshes = [c for c in hopx.calls("POST") if c[1].endswith("/token/refresh")]
        assert len(refreshes) == 1
        assert hopx.calls("WS")[-1][2]["Authorization"] == "Bearer tok-2"

    scenario(fn)


def test_a_sandbox_found_gone_by_the_refresh_after_a_401_is_dropped_and_replaced():
    async def fn(hopx, session):
        await cell(session)
        for ws in hopx.sockets:
            await ws.close()  # deleted: its sockets are gone, its token unknown (401)
        real = hopx.websocket

        async def unknown_token(url, **options):
            if options["additional_headers"]["Authorization"] != "Bearer tok-9":
                hopx.log.append(("WS", url, options["additional_headers"]))
                raise InvalidStatus(Response(401, "Unauthorized", Headers(), b"{}"))
            return await real(url, **options)

        hopx.websocket = unknown_token
        hopx.routes[("POST", "/v1/sandboxes/sb-1/token/refresh")] = (
            410,
            {"error": {"message": "sandbox sb-1 was deleted", "code": "SANDBOX_EXPIRED"}},
        )
        with pytest.raises(SandboxExpired) as info:
            await cell(session)
        assert info.value.hint == session.lost_hint
        hopx.routes[("POST", "/v1/sandboxes")] = (201, sandbox("sb-2", "tok-9"))
        await cell(session)  # not the dead sandbox again
        assert session.describe()["sandbox_id"] == "sb-2"

    scenario(fn)


def test_a_lost_sandbox_is_dropped_with_a_hint_and_the_next_cell_gets_a_new_one():
    async def fn(hopx, session):
        await cell(session)
        for ws in hopx.sockets:
            await ws.close()  # the warm socket is gone with the sandbox
        hopx.refuse = ConnectionRefusedError(111, "refused")
        with pytest.raises(Unreachable) as info:
            await cell(session)
        assert info.value.hint == session.lost_hint and "new sandbox" in info.value.hint
        assert session.describe()["sandbox"] == "not started yet"
        hopx.refuse = None
        hopx.routes[("POST", "/v1/sandboxes")] = (201, sandbox("sb-2", "tok-9"))
        await cell(session)
        assert session.describe()["sandbox_id"] == "sb-2"

    scenario(fn)


def test_attach_mode_never_creates_and_says_how_to_recover():
    async def fn(hopx, session):
        hopx.routes[("GET", "/v1/sandboxes/sb-1")] = (200, sandbox(status="running"))
        await session.ready()
        asked = [c[:2] for c in hopx.log if c[0] != "WS"]
        assert asked[:2] == [("GET", "/v1/sandboxes/sb-1"), ("POST", "/v1/sandboxes/sb-1/token/refresh")]
        assert ("POST", "/v1/sandboxes") not in asked
        assert not session.can_replace and "HOPX_SANDBOX_ID" in session.lost_hint

    scenario(fn, mode="attach")


def test_keepalive_extends_the_timeout_and_drops_an_expired_sandbox():
    async def fn(hopx, session):
        live = await session.ready()
        live.extended -= session.keepalive_period
        await session.keepalive_once(live)
        assert hopx.calls("PUT")[-1][1] == "/v1/sandboxes/sb-1/timeout"
        await session.keepalive_once(live)  # just extended: nothing to do
        assert len(hopx.calls("PUT")) == 1
        hopx.routes[("PUT", "/v1/sandboxes/sb-1/timeout")] = (410, {"error": {"message": "gone"}})
        live.extended -= session.keepalive_period
        await session.keepalive_once(live)
        assert session.describe()["sandbox"] == "not started yet"

    scenario(fn)


def test_shutdown_deletes_the_sandbox_and_opens_no_socket_once_it_has_begun():
    async def fn(hopx, session):
        await cell(session)

        def delete(request):
            for ws in hopx.sockets:
                ws.agent_closes(1001)  # the sandbox ends, and its sockets with it
            session.prepare_next()  # a cell ending as the kernel shuts down
            return 204, None

        hopx.routes[("DELETE", "/v1/sandboxes/sb-1")] = delete
        before = len(hopx.calls("WS"))
        await session.shutdown()
        await asyncio.sleep(0)
        assert hopx.calls("DELETE")[0][1] == "/v1/sandboxes/sb-1"
        assert len(hopx.calls("WS")) == before
        assert all(ws.close_exc is not None for ws in hopx.sockets)  # none left open

    scenario(fn)
