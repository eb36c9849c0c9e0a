"""Named leases, so that one gateway replica at a time does a job (refreshing a source's index, say).

A lease is one document (collection `leases`, `_id` = lease name, `holder`, `expires_us`, `rev`). Whether
it may be taken is decided on the document as read (free, expired, or ours already), and the taking is a
compare-and-swap on `_id` and `rev`: of two replicas that read the same expired lease, one takes it.
Expiry is compared in integer microseconds; `expires_at` is there for the TTL index, which only clears
away old leases, and may lag.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from pymongo import ASCENDING
from pymongo.errors import ConnectionFailure, DuplicateKeyError

from gateway.model import utcnow
from gateway.store.mongo import (
    Collection,
    Database,
    compare_and_swap,
    ensure_index,
    micros_of,
    new_write_token,
    to_micros,
    utc_collection,
    written_by,
)


class Leases:
    def __init__(self, db: Database) -> None:
        self._leases: Collection = utc_collection(db, "leases")

    async def ensure_indexes(self) -> None:
        await ensure_index(self._leases, [("expires_at", ASCENDING)], expireAfterSeconds=0)

    async def acquire(self, name: str, holder: str, ttl_seconds: float, now: datetime | None = None) -> bool:
        """Take the lease when it is free or expired, or renew it when `holder` has it already."""
        moment = now or utcnow()
        expires_at = moment + timedelta(seconds=ttl_seconds)
        fields = {"holder": holder, "expires_at": expires_at, "expires_us": to_micros(expires_at)}
        current = await self._leases.find_one({"_id": name})
        if current is None:
            token = new_write_token()
            try:
                await self._leases.insert_one({"_id": name, "rev": 1, "write_token": token, **fields})
            except DuplicateKeyError:
                return False  # someone else took it first
            except ConnectionFailure:
                return await written_by(self._leases, name, token)
            return True
        if current.get("holder") != holder and micros_of(current, "expires_us", "expires_at") > to_micros(moment):
            return False
        return await compare_and_swap(self._leases, name, current.get("rev"), fields)

    async def release(self, name: str, holder: str) -> bool:
        """Give the lease up if `holder` has it; whether it did."""
        current = await self._leases.find_one({"_id": name})
        if current is None or current.get("holder") != holder:
            return False
        released = await self._leases.delete_one({"_id": name, "rev": current.get("rev")})
        return released.deleted_count == 1

    async def holder(self, name: str, now: datetime | None = None) -> str | None:
        """Who holds the lease now, if anyone."""
        lease = await self._leases.find_one({"_id": name})
        if lease is None or micros_of(lease, "expires_us", "expires_at") <= to_micros(now or utcnow()):
            return None
        return str(lease["holder"])
