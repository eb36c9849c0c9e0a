"""Whether MongoDB answers, as far as this replica knows: after a store operation fails for want of an
answer (no server to select, a dropped connection, the store timeout), what needs the store is refused
at once with `StoreUnavailable`, while one probe at a time pings until MongoDB answers again.

Each request would otherwise wait out the store timeout in turn; and one that gets through meanwhile is
as bounded as any other (the client's `timeoutMS`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

from pymongo.errors import ConnectionFailure, PyMongoError, WaitQueueTimeoutError

from gateway.errors import StoreUnavailable

log = logging.getLogger(__name__)

#: seconds between pings while MongoDB does not answer
PROBE_INTERVAL = 0.25


def is_unavailable(error: BaseException) -> bool:
    """Whether `error` says MongoDB did not answer (rather than answering no)."""
    return isinstance(error, ConnectionFailure) or (isinstance(error, PyMongoError) and error.timeout)


class StoreHealth:
    def __init__(self, ping: Callable[[], Awaitable[object]], probe_interval: float = PROBE_INTERVAL) -> None:
        self._ping = ping
        self._probe_interval = probe_interval
        #: since when (monotonic) MongoDB has not answered, and why; None while it answers
        self._down_since: float | None = None
        self._reason = ""
        self._probe: asyncio.Task[None] | None = None

    @property
    def available(self) -> bool:
        return self._down_since is None

    def check(self) -> None:
        """Raise `StoreUnavailable` at once when MongoDB is known not to answer."""
        if self._down_since is not None:
            down_for = time.monotonic() - self._down_since
            raise StoreUnavailable(f"MongoDB has not answered for {down_for:.1f} s ({self._reason}); try again shortly")

    def failed(self, error: BaseException) -> None:
        """Note a store operation that failed; one that MongoDB did not answer marks the store down.

        Not one that waited too long for a connection of this replica's own pool: that is this replica
        overloaded, with MongoDB answering the operations ahead of it; the operation is refused, the
        others go on."""
        if not is_unavailable(error) or isinstance(error, WaitQueueTimeoutError) or self._down_since is not None:
            return
        self._down_since = time.monotonic()
        self._reason = type(error).__name__
        log.warning("MongoDB does not answer (%s); refusing what needs it until it does", self._reason)
        with contextlib.suppress(RuntimeError):  # no running loop: the next failure in one starts the probe
            self._probe = asyncio.get_running_loop().create_task(self._probe_until_it_answers(), name="store-probe")

    def answered(self) -> None:
        if self._down_since is not None:
            log.warning("MongoDB answers again after %.1f s", time.monotonic() - self._down_since)
        self._down_since = None

    def unavailable(self, error: BaseException) -> StoreUnavailable:
        """The error to answer for a store operation that MongoDB did not answer (noting it)."""
        self.failed(error)
        return StoreUnavailable(f"MongoDB did not answer ({type(error).__name__}); try again shortly")

    async def _probe_until_it_answers(self) -> None:
        while self._down_since is not None:
            await asyncio.sleep(self._probe_interval)
            try:
                await self._ping()
            except PyMongoError:
                continue
            self.answered()

    async def close(self) -> None:
        if self._probe is not None:
            self._probe.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._probe
