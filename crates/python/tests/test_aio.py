"""soam.aio: the client for asyncio programs."""

from __future__ import annotations

import asyncio

import soam
import soam.aio
from conftest import Agent, profile


def test_async_for_collects_and_the_loop_keeps_running(echo: Agent) -> None:
    async def main() -> None:
        agent = await soam.aio.connect()
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                ticks += 1
                await asyncio.sleep(0.01)

        ticker = asyncio.ensure_future(tick())
        async with await agent.create_session("echo", common_data=b"+") as s:
            ids = await s.submit(str(i) for i in range(500))
            assert ids == range(1, 501)
            got = [o.data async for o in s.outputs()]
        ticker.cancel()
        assert sorted(got) == sorted(b"+" + str(i).encode() for i in range(500))
        assert ticks > 0

    asyncio.run(main())


def test_async_errors_and_fetch(agent: Agent) -> None:
    agent.register("h.yaml", profile("h", "hooks.py"))

    async def main() -> None:
        c = await soam.aio.connect()
        try:
            await c.create_session("nope")
            raise AssertionError("created a session of an unknown application")
        except soam.UnknownApplication:
            pass
        s = await c.create_session("h")
        assert await s.fetch(3, timeout=0.1) == []
        await s.submit(["a"])
        got = await s.fetch(1, timeout=10)
        assert [o.data for o in got] == [b"a"]
        await s.close()

    asyncio.run(main())
