"""In-flight deduplication of vendor reads: identical reads at the same moment share one call.

Two reads are identical when they have the same method, URL, query parameters and headers (the
credentials among them), so an answer is only ever shared by callers that would have been sent the same
one. The headers that only trace a call (`traceparent`, `X-Request-Id`) are not part of what is read: a
shared call carries the trace of the request that started it. Only reads are shared: a write is always
sent on its own. The shared call runs in a task of its own, so that a caller that gives up (a cancelled
request) does not cancel it for the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Mapping
from typing import Any, Generic, TypeVar

T = TypeVar("T")

#: what makes two reads the same read
ReadKey = tuple[str, str, tuple[tuple[str, str], ...], tuple[tuple[str, str], ...]]


def read_key(method: str, url: str, params: Mapping[str, str | int] | None, headers: Mapping[str, str]) -> ReadKey:
    return (
        method,
        url,
        tuple(sorted((name, str(value)) for name, value in (params or {}).items())),
        tuple(sorted((name.lower(), value) for name, value in headers.items())),
    )


class InFlight(Generic[T]):
    """The reads in flight in this process, each one shared by everyone who asks for it meanwhile."""

    def __init__(self) -> None:
        self._calls: dict[ReadKey, asyncio.Task[T]] = {}
        #: calls not sent because an identical one was in flight
        self.saved = 0

    def __len__(self) -> int:
        return len(self._calls)

    def share(self, key: ReadKey, send: Callable[[], Coroutine[Any, Any, T]]) -> tuple[Awaitable[T], bool]:
        """The answer to the read `key` (sent by `send` unless it is in flight already), and whether it
        joined a call in flight rather than starting one."""
        task = self._calls.get(key)
        joined = task is not None
        if task is None:
            task = asyncio.ensure_future(send())
            self._calls[key] = task
            task.add_done_callback(lambda done: self._forget(key, done))
        else:
            self.saved += 1
        # shield: one caller's cancellation leaves the call running for the others.
        return asyncio.shield(task), joined

    def _forget(self, key: ReadKey, task: asyncio.Task[T]) -> None:
        if self._calls.get(key) is task:
            del self._calls[key]
        if not task.cancelled():
            task.exception()  # retrieved, so that an error nobody awaited any more is not logged as lost
