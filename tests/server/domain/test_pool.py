"""The warm pool's hand-out order (server/domain/pool.py), with runners that start at once.

A refilling pool (``hopx-kernel serve``) loads a kernel's completer before it hands the
kernel out: a sandbox's first cell must not wait behind Jedi's start, which the idle
warm-up would begin a second after the kernel's boot, whoever had it by then.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

from hopx_kernel.server.domain.pool import KernelPool


class Runner:
    """Quacks like IPythonRunner for the pool: starts at once, warms when released."""

    made: list[Runner] = []

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.warming = asyncio.Event()
        self.release = asyncio.Event()
        self.warmed = False
        self.stopped = False
        Runner.made.append(self)

    async def start(self) -> None:
        pass

    async def warm(self) -> None:
        self.warming.set()
        await self.release.wait()
        self.warmed = True

    async def check_alive(self) -> str | None:
        return None

    async def shutdown(self) -> None:
        self.stopped = True


def pool(tmp_path: Path, refill: bool = True) -> KernelPool:
    Runner.made = []
    return KernelPool(tmp_path, 1, Runner, refill=refill)  # type: ignore[arg-type]


async def warming(tmp_path: Path) -> tuple[KernelPool, Runner]:
    """A refilling pool, started, and its first kernel, in its warm-up."""
    p = pool(tmp_path)
    p.start()
    await asyncio.wait_for(_first(Runner.made), 5)
    runner = Runner.made[0]
    await asyncio.wait_for(runner.warming.wait(), 5)
    return p, runner


async def settle() -> None:
    """Let every task that can run, run (the fake runners never wait on anything else)."""
    for _ in range(20):
        await asyncio.sleep(0)


def test_a_refilling_pool_hands_out_a_kernel_once_its_completer_is_loaded(tmp_path):
    async def scenario() -> None:
        p, runner = await warming(tmp_path)
        runner.release.set()
        await settle()
        assert p._ready.qsize() == 1  # warmed, then ready
        _, _, got = await asyncio.wait_for(p.take(), 5)
        assert got is runner and runner.warmed
        Runner.made[-1].release.set()  # the refill's warm-up
        await p.close()

    asyncio.run(scenario())


def test_a_create_that_comes_during_a_warm_up_takes_that_kernel_at_once(tmp_path):
    async def scenario() -> None:
        p, runner = await warming(tmp_path)
        await settle()
        assert p._ready.empty()  # not handed out while it warms, unless someone asks
        _, _, got = await asyncio.wait_for(p.take(), 5)  # the warm-up is never released
        assert got is runner and not runner.warmed
        await p.close()

    asyncio.run(scenario())


def test_a_create_that_is_waiting_gets_its_kernel_without_the_warm_up(tmp_path):
    async def scenario() -> None:
        p = pool(tmp_path)
        _, _, got = await asyncio.wait_for(p.take(), 5)  # nothing ready: the create waits
        assert not got.warming.is_set()  # its first cell must not wait for Jedi either
        for runner in Runner.made[1:]:
            runner.release.set()
        await p.close()

    asyncio.run(scenario())


def test_the_embedded_pool_does_not_warm_ahead(tmp_path):
    async def scenario() -> None:
        p = pool(tmp_path, refill=False)  # one kernel started with the server, no refill
        p.start()
        await asyncio.wait_for(_first(Runner.made), 5)
        _, _, got = await asyncio.wait_for(p.take(), 5)
        assert not got.warming.is_set()  # the idle warm-up comes later, in the sandbox
        await p.close()

    asyncio.run(scenario())


def test_closing_the_pool_during_a_warm_up_stops_that_kernel(tmp_path):
    async def scenario() -> None:
        p, runner = await warming(tmp_path)
        await p.close()
        assert runner.stopped

    asyncio.run(scenario())


async def _first(made: list) -> None:
    while not made:
        await asyncio.sleep(0)
