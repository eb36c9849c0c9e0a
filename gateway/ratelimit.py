"""How often one caller may ask: a moving window per caller, in the `limits` notation (`1200/minute`)."""

from __future__ import annotations

import math
import time

from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from gateway.auth import Principal
from gateway.errors import RateLimited


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
