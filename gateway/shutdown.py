"""Graceful shutdown's registry of long-lived connections (websockets, event streams).

aiohttp stops accepting, then runs `on_shutdown`, then waits up to its shutdown timeout for requests in
flight. A connection that stays open on its own (a websocket, a stream of server-sent events) would hold
that wait to the end and then be cut with no word, so each one registers how to close itself with
"going away" (websocket close code 1001), and `on_shutdown` closes them all first.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator

from aiohttp import web

log = logging.getLogger(__name__)

#: the websocket close code of a server going away (RFC 6455, 7.4.1)
GOING_AWAY = 1001
#: the longest wait for all connections to close before the server moves on
CLOSE_WAIT = 2.0

Closer = Callable[[], Awaitable[object]]


class LongLivedConnections:
    """Open connections that close only when told to, each with a coroutine that closes it going away."""

    def __init__(self) -> None:
        self._closers: dict[int, Closer] = {}
        self._pending: set[asyncio.Future[object]] = set()
        self.closing = False

    def __len__(self) -> int:
        return len(self._closers)

    def register(self, connection: object, close: Closer) -> None:
        """Remember how to close `connection` (known by identity, until `unregister`); one opened while the
        server is already stopping is closed at once."""
        if self.closing:
            self._pending.add(asyncio.ensure_future(close()))
            return
        self._closers[id(connection)] = close

    def unregister(self, connection: object) -> None:
        self._closers.pop(id(connection), None)

    @contextlib.contextmanager
    def holding(self, connection: object, close: Closer) -> Iterator[None]:
        """`connection` registered while the block runs (a stream handler's body)."""
        self.register(connection, close)
        try:
            yield
        finally:
            self.unregister(connection)

    async def close_all(self, wait: float = CLOSE_WAIT) -> None:
        """Tell every connection the server is going away; wait at most `wait` seconds for them."""
        self.closing = True
        closers = list(self._closers.values())
        if not closers:
            return
        log.info("closing %d long-lived connection(s): server going away", len(closers))
        tasks = [asyncio.ensure_future(close()) for close in closers]
        done, pending = await asyncio.wait(tasks, timeout=wait)
        for task in pending:
            task.cancel()
        for task in done:
            if not task.cancelled() and task.exception() is not None:
                log.debug("closing a connection failed", exc_info=task.exception())


LONG_LIVED = web.AppKey("long_lived", LongLivedConnections)


async def close_long_lived(app: web.Application) -> None:
    """`on_shutdown`: runs once the server accepts no more connections, before in-flight requests are
    waited for."""
    await app[LONG_LIVED].close_all()


def install(app: web.Application) -> LongLivedConnections:
    connections = LongLivedConnections()
    app[LONG_LIVED] = connections
    app.on_shutdown.append(close_long_lived)
    return connections
