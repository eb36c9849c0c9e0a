"""What one caller may use: requests per moving window (in the `limits` notation, `1200/minute`), and
websockets open at once."""

from __future__ import annotations

import math
import time
from collections import Counter

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from gateway.auth import Principal
from gateway.errors import GatewayError, RateLimited


class CallerRateLimit:
    """A moving window per caller, per replica: a caller spread over N replicas gets up to N times the rate."""

    def __init__(self, limit: str) -> None:
        self._item: RateLimitItem | None = parse(limit) if limit else None
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, principal: Principal) -> None:
        if self._item is None:
            return
        if not self._limiter.hit(self._item, principal.name):
            stats = self._limiter.get_window_stats(self._item, principal.name)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited(f"more than {self._item} requests; try again in {retry_after} s", retry_after=retry_after)


class TooManySockets(GatewayError):
    code = "RATE_LIMITED"
    retryable = True


class CallerSockets:
    """The websockets each caller holds open on this replica, up to `limit` each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def open(self, principal: Principal) -> None:
        if self._open[principal.name] >= self.limit:
            raise TooManySockets(f"at most {self.limit} sockets per caller are open at once; close one first")
        self._open[principal.name] += 1

    def held(self, name: str) -> int:
        """How many the caller called `name` holds open now."""
        return self._open[name]

    def close(self, principal: Principal) -> None:
        self._open[principal.name] -= 1
        if self._open[principal.name] <= 0:
            del self._open[principal.name]
