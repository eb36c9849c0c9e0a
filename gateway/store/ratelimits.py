"""Windows of counted uses shared by every replica: a caller's requests, a vendor's outbound calls.

One document per key holds the counts of the last few buckets of the window (`window / BUCKETS` seconds
each). A use is counted with one atomic `$inc` that returns the document, so every replica sees every
other's counts. A take is refused when the buckets that overlap the last window (`BUCKETS + 1` of them,
spanning a little more than the window) hold more than the limit; it is then given back. Counting a span a
little longer than the window means the limit is never exceeded over any window of its length, by all
replicas together; the price is that a client sending steadily at the full rate may be refused up to one
bucket (a tenth) early.

A take may reserve several uses at once (`lease`), so that a busy key costs one round trip per lease
rather than one per use; a lease is used only within the bucket it was counted in (uses left when the
bucket ends are given up, never carried over), which keeps the bound above.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from pymongo import ReturnDocument
from pymongo.errors import PyMongoError

from gateway.store.health import StoreHealth
from gateway.store.mongo import Database, ensure_index, utc_collection

BUCKETS = 10


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    #: seconds until a refused take could be allowed
    retry_after: float = 0.0
    #: uses granted (the first is the one asked for; the rest may be used later within `bucket`)
    granted: int = 0
    bucket: int = 0


class SharedWindows:
    def __init__(self, db: Database, health: StoreHealth | None = None) -> None:
        self.collection = utc_collection(db, "rate_windows")
        #: while MongoDB is known not to answer, a take fails at once (its caller counts on its own meanwhile)
        self.health = health

    async def ensure_indexes(self) -> None:
        await ensure_index(self.collection, [("expires_at", 1)], expireAfterSeconds=0)

    async def take(self, key: str, limit: int, window: float, lease: int = 1, now: float | None = None) -> Verdict:
        """Count `lease` uses of `key` (a limit of `limit` per `window` seconds): allowed with as many of
        them as fit (at least the one asked for), or refused with how long to wait."""
        if self.health is not None:
            self.health.check()
        now = time.time() if now is None else now
        length = window / BUCKETS
        bucket = math.floor(now / length)
        expires = datetime.fromtimestamp(now + 2 * window, UTC)
        try:
            doc = await self.collection.find_one_and_update(
                {"_id": key},
                {"$inc": {f"b.w{bucket}": lease}, "$set": {"expires_at": expires}},
                upsert=True,
                return_document=ReturnDocument.AFTER,
            )
        except PyMongoError as exc:
            if self.health is not None:
                raise self.health.unavailable(exc) from exc
            raise
        assert doc is not None
        counts = {int(name[1:]): int(count) for name, count in (doc.get("b") or {}).items()}
        span = {b: c for b, c in counts.items() if b >= bucket - BUCKETS}
        used = sum(span.values())
        over = used - limit
        old = [b for b in counts if b < bucket - BUCKETS]
        if over <= 0 and not old:
            return Verdict(True, granted=lease, bucket=bucket)
        update: dict[str, dict[str, object]] = {}
        if old:
            update["$unset"] = {f"b.w{b}": "" for b in old}
        if over > 0:
            # Give back what does not fit; the one asked for is refused only when none of the lease fits.
            update["$inc"] = {f"b.w{bucket}": -min(over, lease)}
        await self.collection.update_one({"_id": key}, update)
        if over < lease:
            return Verdict(True, granted=lease - max(over, 0), bucket=bucket)
        # Refused: wait until the oldest counted bucket leaves the span.
        oldest = min((b for b, c in span.items() if c > 0), default=bucket)
        retry_after = max(length, (oldest + BUCKETS + 1) * length - now)
        return Verdict(False, retry_after=retry_after, bucket=bucket)
