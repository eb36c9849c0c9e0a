"""Equal subscriptions share one computation per replica: the first subscriber to a key starts it, every
subscriber to the same key reads what it yields, and the last one to leave stops it.

A subscriber that joins late starts from the latest value; one that reads slowly skips to the newest value
(each value is a whole snapshot, such as the dashboard's counts, so nothing is lost by skipping).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
from collections.abc import AsyncIterator, Callable, Hashable
from dataclasses import dataclass, field
from typing import Any


@dataclass(slots=True)
class _Failed:
    error: BaseException


@dataclass(slots=True)
class _Computation:
    readers: set[asyncio.Queue[Any]] = field(default_factory=set)
    latest: list[Any] = field(default_factory=list)  # empty until the first value
    task: asyncio.Task[None] | None = None


def _offer(queue: asyncio.Queue[Any], item: Any) -> None:
    if queue.full():
        queue.get_nowait()  # the newer snapshot replaces the one not read yet
    queue.put_nowait(item)


class SharedComputations:
    def __init__(self) -> None:
        self._running: dict[Hashable, _Computation] = {}

    @property
    def running(self) -> int:
        return len(self._running)

    async def follow(self, key: Hashable, start: Callable[[], AsyncIterator[Any]]) -> AsyncIterator[Any]:
        """What the computation of `key` yields, started with `start()` unless one is running already."""
        computation = self._running.get(key)
        if computation is None:
            computation = self._running[key] = _Computation()
            # It belongs to no one subscriber's request: it runs in a context of its own (no request id, and
            # its vendor calls charged to nobody's budget), and outlives whoever started it.
            computation.task = asyncio.create_task(
                self._run(key, computation, start()), name=f"shared {key!r}", context=contextvars.Context()
            )
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=1)
        if computation.latest:
            queue.put_nowait(computation.latest[0])
        computation.readers.add(queue)
        try:
            while True:
                item = await queue.get()
                if isinstance(item, _Failed):
                    raise item.error
                yield item
        finally:
            computation.readers.discard(queue)
            if not computation.readers and self._running.get(key) is computation:
                del self._running[key]
                if computation.task is not None:
                    computation.task.cancel()

    async def _run(self, key: Hashable, computation: _Computation, source: AsyncIterator[Any]) -> None:
        try:
            async for item in source:
                computation.latest[:] = [item]
                for queue in computation.readers:
                    _offer(queue, item)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            # Each reader gets the error; the next subscriber starts afresh.
            if self._running.get(key) is computation:
                del self._running[key]
            for queue in computation.readers:
                _offer(queue, _Failed(exc))
        finally:
            with contextlib.suppress(Exception):
                await source.aclose()  # type: ignore[attr-defined]
