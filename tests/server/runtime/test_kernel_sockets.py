"""The server's kernel channels: what they send arrives whole, and a reply that comes back
while the server sends is read at once. With jupyter_client's own send this test times
out (the end-to-end case: tests/kernel/test_widgets.py)."""

from __future__ import annotations

import asyncio

import zmq
import zmq.asyncio
from jupyter_client.session import Session

from hopx_kernel.server.runtime.kernel_sockets import Channel, reader


def test_messages_with_buffers_go_out_and_replies_sent_meanwhile_are_read():
    async def main() -> None:
        ctx = zmq.asyncio.Context()
        session = Session(key=b"k")
        kernel = ctx.socket(zmq.ROUTER)  # the sandbox kernel's shell
        port = kernel.bind_to_random_port("tcp://127.0.0.1")
        dealer = ctx.socket(zmq.DEALER)
        dealer.connect(f"tcp://127.0.0.1:{port}")
        channel = Channel(dealer, session)
        next_msg = reader(channel)
        try:
            for i in range(200):
                pending = asyncio.ensure_future(next_msg())  # the server's reader, waiting
                channel.send(dict(session.msg("comm_msg", {"n": i}), buffers=[b"\x00" * 3]))
                ident, frames = session.feed_identities(await kernel.recv_multipart(), copy=True)
                got = session.deserialize(frames)
                assert got["content"] == {"n": i} and [bytes(b) for b in got["buffers"]] == [b"\x00" * 3]
                session.send(kernel, "execute_reply", {"n": i}, parent=got, ident=ident)
                # the next send, as the reply arrives: it must not swallow the reader's wake-up
                channel.send(session.msg("comm_msg", {"n": -1}))
                reply = await asyncio.wait_for(pending, 5)
                assert reply["content"] == {"n": i}
                await kernel.recv_multipart()
        finally:
            dealer.close(0)
            kernel.close(0)
            ctx.term()

    asyncio.run(main())
