"""The one HTTP call path: every failure becomes one of our errors (real sockets)."""

from __future__ import annotations

import asyncio
import socket

import pytest

from hopx_kernel.errors import NotFound, Unreachable
from hopx_kernel.http import fetch, json_body, new_client


async def _serve(handler) -> tuple[asyncio.AbstractServer, str]:
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    return server, f"http://127.0.0.1:{port}/x"


def test_a_server_that_never_answers_is_unreachable_timed_out():
    async def scenario():
        silent = asyncio.Event()

        async def handler(reader, writer):
            await silent.wait()  # accept, read nothing, answer nothing

        server, url = await _serve(handler)
        try:
            with pytest.raises(Unreachable) as info:
                await fetch(
                    new_client(),
                    "GET",
                    url,
                    headers={},
                    timeout=0.5,
                    action="create a sandbox",
                    where="HopX at test",
                    hint="Check it.",
                )
            assert (
                info.value.line() == "Could not reach HopX at test to create a sandbox (timed out). Check it."
            )
        finally:
            silent.set()
            server.close()

    asyncio.run(scenario())


def test_a_refused_connection_is_unreachable():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # bound, not listening: connections are refused

        async def scenario():
            with pytest.raises(Unreachable):
                await fetch(
                    new_client(),
                    "GET",
                    f"http://127.0.0.1:{port}/",
                    headers={},
                    timeout=2,
                    action="find the sandbox",
                    where="HopX",
                    hint="",
                )

        asyncio.run(scenario())


def test_error_status_and_non_json_body_are_translated():
    async def scenario():
        async def handler(reader, writer):
            request = await reader.readuntil(b"\r\n\r\n")
            if b"GET /x" in request:
                body = b'{"error": {"message": "no such sandbox", "code": "NOT_FOUND"}}'
                writer.write(
                    b"HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
                )
            else:
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello")
            await writer.drain()
            writer.close()

        server, url = await _serve(handler)
        try:
            with pytest.raises(NotFound) as info:
                await fetch(
                    new_client(),
                    "GET",
                    url,
                    headers={},
                    timeout=5,
                    action="find the sandbox",
                    where="HopX",
                    hint="",
                )
            assert "no such sandbox" in info.value.line() and info.value.status == 404
            response = await fetch(
                new_client(),
                "POST",
                url.replace("/x", "/y"),
                headers={},
                body="{}",
                timeout=5,
                action="create a sandbox",
                where="HopX",
                hint="",
            )
            with pytest.raises(Exception) as bad:
                json_body(response, action="create a sandbox", where="HopX")
            assert "not JSON" in str(bad.value)
        finally:
            server.close()

    asyncio.run(scenario())
