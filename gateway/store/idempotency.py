"""Idempotency records: a caller's key, bound to the request it first came with and its operation.

The record is claimed with one `insert_one` on a unique `_id`, so of any number of concurrent requests
with the same caller and key exactly one wins and runs; the others find its operation and replay it.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo.errors import DuplicateKeyError

from gateway.model import as_utc, utcnow
from gateway.store.mongo import Database, ensure_index, utc_collection

RETENTION = timedelta(hours=24)


@dataclass(slots=True)
class IdempotencyRecord:
    request_hash: str
    operation_id: str
    created_at: datetime


def record_id(caller: str, key: str) -> str:
    return hashlib.sha256(f"{caller}\0{key}".encode()).hexdigest()


class IdempotencyRecords:
    def __init__(self, db: Database) -> None:
        self.collection = utc_collection(db, "idempotency")

    async def ensure_indexes(self) -> None:
        await ensure_index(self.collection, [("expires_at", 1)], expireAfterSeconds=0)

    async def claim(self, caller: str, key: str, request_hash: str, operation_id: str) -> IdempotencyRecord | None:
        """Bind the key to this request; None when it is ours now, else the record that holds it."""
        now = utcnow()
        doc = {
            "_id": record_id(caller, key),
            "request_hash": request_hash,
            "operation_id": operation_id,
            "created_at": now,
            "expires_at": now + RETENTION,
        }
        for _ in range(2):
            try:
                await self.collection.insert_one(doc)
                return None
            except DuplicateKeyError:
                existing = await self.collection.find_one({"_id": doc["_id"], "expires_at": {"$gt": now}})
                if existing is not None:
                    return IdempotencyRecord(
                        existing["request_hash"],
                        existing["operation_id"],
                        as_utc(existing["created_at"]),  # type: ignore[arg-type]
                    )
                # Expired but not yet swept by the TTL monitor: it no longer binds the key.
                await self.collection.delete_one({"_id": doc["_id"], "expires_at": {"$lte": now}})
        raise RuntimeError("idempotency key is contended")  # pragma: no cover

    async def release(self, caller: str, key: str, operation_id: str) -> None:
        """Free the key of a request that made no vendor call, so that the client's retry can run."""
        await self.collection.delete_one({"_id": record_id(caller, key), "operation_id": operation_id})
