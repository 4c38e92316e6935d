"""soam for asyncio programs: the client of ``soam.client`` with coroutines and
``async for``. Every wait runs in the event loop's default executor (with the GIL released),
so the loop keeps serving other tasks meanwhile.

Example::

    import asyncio
    import soam.aio

    async def main() -> None:
        agent = await soam.aio.connect()
        async with await agent.create_session("sampleApp") as s:
            await s.submit([b"a", b"b"])
            async for out in s.outputs():
                print(out.task, out.data)

    asyncio.run(main())
"""

from __future__ import annotations

import asyncio
import functools
import os
from typing import Any, AsyncIterator, Callable, Iterable, List, Optional, TypeVar, Union

from . import client as _client
from ._native import Output
from .errors import SoamError

__all__ = ["connect", "AsyncClient", "AsyncSession", "Output"]

T = TypeVar("T")

#: How long one executor call may wait for an output before the loop gets a say (a
#: cancelled ``async for`` leaves at most this much waiting behind in its thread).
_POLL = 0.25


async def _run(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, functools.partial(fn, *args))


async def connect(
    socket: Optional[Union[str, "os.PathLike[str]"]] = None,
    *,
    autostart: Optional[bool] = None,
    name: Optional[str] = None,
) -> "AsyncClient":
    """Connects to the agent (starting one if none answers): see :class:`soam.Client`."""
    c = await _run(functools.partial(_client.Client, socket, autostart=autostart, name=name))
    return AsyncClient(c)


class AsyncClient:
    """:class:`soam.Client` for asyncio."""

    def __init__(self, sync: "_client.Client") -> None:
        self.sync = sync

    @property
    def agent_version(self) -> str:
        return self.sync.agent_version

    async def create_session(self, app: str, **kwargs: Any) -> "AsyncSession":
        """As :meth:`soam.Client.create_session`."""
        s = await _run(functools.partial(self.sync.create_session, app, **kwargs))
        return AsyncSession(s)

    async def open_session(self, address: str, **kwargs: Any) -> "AsyncSession":
        """As :meth:`soam.Client.open_session`."""
        s = await _run(functools.partial(self.sync.open_session, address, **kwargs))
        return AsyncSession(s)

    async def __aenter__(self) -> "AsyncClient":
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.sync.close()


class AsyncSession:
    """:class:`soam.Session` for asyncio. ``async with`` closes it when the block ends
    normally and detaches from it when the block raises."""

    def __init__(self, sync: "_client.Session") -> None:
        self.sync = sync

    @property
    def address(self) -> str:
        return self.sync.address

    @property
    def id(self) -> int:
        return self.sync.id

    @property
    def app(self) -> str:
        return self.sync.app

    async def submit(self, inputs: Iterable[_client.Input]) -> range:
        """As :meth:`soam.Session.submit`. The inputs are read in the calling thread."""
        items = inputs if isinstance(inputs, (list, tuple)) else list(inputs)
        return await _run(self.sync.submit, items)

    async def outputs(self, *, timeout: Optional[float] = None) -> AsyncIterator[Output]:
        """As :meth:`soam.Session.outputs`, for ``async for``."""
        it = self.sync._native.outputs(None)
        loop = asyncio.get_running_loop()
        idle_since = loop.time()
        try:
            while True:
                # What is here already is handed out without leaving the loop.
                out = it.poll(0)
                if out is None and not it.exhausted:
                    out = await loop.run_in_executor(None, it.poll, _POLL)
                if out is not None:
                    idle_since = loop.time()
                    yield out
                    continue
                if it.exhausted:
                    return
                if timeout is not None and loop.time() - idle_since >= timeout:
                    raise TimeoutError(f"no output of session {self.address} within {timeout} s")
        finally:
            it.close()

    async def fetch(self, max: int = 1, timeout: float = 0) -> List[Output]:
        """As :meth:`soam.Session.fetch`."""
        return await _run(self.sync.fetch, max, timeout)

    async def update(self, common_data: _client.Input) -> None:
        await _run(self.sync.update, common_data)

    async def detach(self) -> None:
        await _run(self.sync.detach)

    async def close(self) -> None:
        await _run(self.sync.close)

    async def abort(self) -> None:
        await _run(self.sync.abort)

    async def __aenter__(self) -> "AsyncSession":
        return self

    async def __aexit__(self, exc_type: object, exc: object, tb: object) -> None:
        if self.sync._over:
            return
        if exc_type is None:
            await self.close()
        else:
            try:
                await self.detach()
            except SoamError:
                pass
