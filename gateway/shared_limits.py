"""Limits that hold across every replica, counted in MongoDB (`gateway.store.ratelimits`): a caller's
request rate, and each vendor's budget of outbound calls.

Each replica leases a few uses at a time (`lease`), so that a busy key costs one MongoDB round trip per
lease rather than per use; a lease is spent within the bucket it was counted in or given up. Should
MongoDB not answer, each replica falls back to counting on its own (the limit then holds per replica).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time

from limits import RateLimitItem, parse
from limits.strategies import MovingWindowRateLimiter
from pymongo.errors import PyMongoError

from gateway.errors import StoreUnavailable
from gateway.store.ratelimits import BUCKETS, SharedWindows, Verdict
from gateway.window_storage import LoopMemoryStorage

log = logging.getLogger(__name__)

#: most leases kept before the ones of past buckets are forgotten
MAX_LEASES = 10_000


def lease_size(limit: int) -> int:
    """Uses leased at a time: a fiftieth of the limit (a fifth of a bucket's fair share), at least one."""
    return max(1, limit // 50)


class SharedLimit:
    """`limit` (in the `limits` notation, `600/minute`) for each key, across all replicas."""

    def __init__(self, windows: SharedWindows, limit: str) -> None:
        self.windows = windows
        self.item: RateLimitItem = parse(limit)
        self.window = float(self.item.get_expiry())
        self.lease = lease_size(self.item.amount)
        self._leases: dict[str, tuple[int, int]] = {}  # key -> (bucket, uses left)
        #: the takes making a round trip now, by key
        self._taking: dict[str, asyncio.Future[None]] = {}
        #: keys refused, until when: nothing counted can leave the window before (a refusal costs no round trip)
        self._refused: dict[str, float] = {}
        self._fallback = MovingWindowRateLimiter(LoopMemoryStorage())
        #: round trips made to MongoDB, for tests and metrics
        self.round_trips = 0

    async def take(self, key: str) -> Verdict:
        # Takes of one key at once wait for the lease in flight rather than each making a round trip.
        while (taking := self._taking.get(key)) is not None:
            await asyncio.shield(taking)
        self._taking[key] = done = asyncio.get_running_loop().create_future()
        try:
            return await self._take(key)
        finally:
            del self._taking[key]
            done.set_result(None)

    async def _take(self, key: str) -> Verdict:
        now = time.time()
        bucket = math.floor(now / (self.window / BUCKETS))
        held = self._leases.get(key)
        if held is not None and held[0] == bucket and held[1] > 0:
            self._leases[key] = (bucket, held[1] - 1)
            return Verdict(True, granted=1, bucket=bucket)
        refused_until = self._refused.get(key)
        if refused_until is not None:
            if now < refused_until:
                return Verdict(False, retry_after=refused_until - now, bucket=bucket)
            del self._refused[key]
        try:
            self.round_trips += 1
            verdict = await self.windows.take(key, self.item.amount, self.window, self.lease, now=now)
        except (PyMongoError, StoreUnavailable):
            log.warning("shared limit %s: MongoDB did not answer; counting in this replica alone", key)
            if self._fallback.hit(self.item, key):
                return Verdict(True, granted=1, bucket=bucket)
            reset = self._fallback.get_window_stats(self.item, key).reset_time
            return Verdict(False, retry_after=max(1.0, reset - now), bucket=bucket)
        if verdict.allowed:
            if len(self._leases) > MAX_LEASES:
                self._leases = {k: v for k, v in self._leases.items() if v[0] == bucket}
            self._leases[key] = (verdict.bucket, verdict.granted - 1)
        else:
            if len(self._refused) > MAX_LEASES:
                self._refused = {k: until for k, until in self._refused.items() if until > now}
            self._refused[key] = now + verdict.retry_after
        return verdict
