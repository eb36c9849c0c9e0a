"""Named leases, so that one gateway replica at a time does a job (refreshing a source's index, say).

A lease is one document (collection `leases`, `_id` = lease name, `holder`, `expires_at`), taken and
renewed with single-document atomic writes. Expiry is decided by `expires_at` in every query; the TTL
index only clears away old leases, and it may lag.

`expires_at` holds whole seconds (a lease lasts up to a second longer than asked): nx-27017 compares
dates in a query to the second, and between whole seconds that comparison is exact, so a lease expires
at the same instant on either server.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import ASCENDING
from pymongo.errors import DuplicateKeyError

from gateway.model import utcnow
from gateway.store.mongo import Collection, Database, ensure_index, utc_collection


class Leases:
    def __init__(self, db: Database) -> None:
        self._leases: Collection = utc_collection(db, "leases")

    async def ensure_indexes(self) -> None:
        await ensure_index(self._leases, [("expires_at", ASCENDING)], expireAfterSeconds=0)

    async def acquire(self, name: str, holder: str, ttl_seconds: float, now: datetime | None = None) -> bool:
        """Take the lease when it is free or expired, or renew it when `holder` has it already."""
        moment = now or utcnow()
        current = _floor_second(moment)
        expires_at = _ceil_second(moment + timedelta(seconds=ttl_seconds))
        lease = {"_id": name, "holder": holder, "expires_at": expires_at}
        # A replacement rather than `$set`: nx-27017 would store a `$set` date as text (see
        # `FORCE_DOCUMENT_REWRITE`), and the whole lease is ours to write anyway.
        taken = await self._leases.replace_one(
            {"_id": name, "$or": [{"expires_at": {"$lte": current}}, {"holder": holder}]}, lease
        )
        if taken.matched_count:
            return True
        try:
            await self._leases.insert_one(lease)
        except DuplicateKeyError:
            return False  # someone else holds it, or took it first
        return True

    async def release(self, name: str, holder: str) -> bool:
        """Give the lease up if `holder` has it; whether it did."""
        released = await self._leases.delete_one({"_id": name, "holder": holder})
        return released.deleted_count == 1

    async def holder(self, name: str, now: datetime | None = None) -> str | None:
        """Who holds the lease now, if anyone."""
        current = _floor_second(now or utcnow())
        lease = await self._leases.find_one({"_id": name, "expires_at": {"$gt": current}})
        return None if lease is None else str(lease["holder"])


# With whole-second expiries, `expires_at <= floor(now)` holds exactly when `now >= expires_at`.
def _floor_second(moment: datetime) -> datetime:
    return moment.replace(microsecond=0)


def _ceil_second(moment: datetime) -> datetime:
    floored = _floor_second(moment)
    return floored if floored == moment else floored + timedelta(seconds=1)
