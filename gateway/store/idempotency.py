"""Idempotency records: a caller's key, bound to the request it first came with and its operation.

The record is claimed with one `insert_one` on a unique `_id`, so of any number of concurrent requests
with the same caller and key exactly one wins and runs; the others find its operation and replay it.
A record is released only for an operation known never to exist (see `OperationJournal.settle`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

from pymongo.errors import ConnectionFailure, DuplicateKeyError

from gateway.model import as_utc, utcnow
from gateway.store.mongo import Database, compare_and_swap, ensure_index, micros_of, to_micros, utc_collection

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
        return await self.claim_record(record_id(caller, key), request_hash, operation_id)

    async def claim_record(self, _id: str, request_hash: str, operation_id: str) -> IdempotencyRecord | None:
        """Bind record `_id` (see `record_id`) to this request; None when it is ours now, else the record
        that holds it.

        A record past its retention that the TTL monitor has not swept yet no longer binds the key: it is
        taken over by a compare-and-swap on its revision, so that of two requests that found it expired,
        one wins. A claim whose reply is lost is read back by its `_id`."""
        now = utcnow()
        fields = {
            "request_hash": request_hash,
            "operation_id": operation_id,
            "created_at": now,
            "expires_at": now + RETENTION,
            "expires_us": to_micros(now + RETENTION),
        }
        for _ in range(3):
            try:
                await self.collection.insert_one({"_id": _id, "rev": 1, **fields})
                return None
            except DuplicateKeyError:
                pass
            except ConnectionFailure:
                pass  # read back below: the record is ours when it names our operation
            existing = await self.collection.find_one({"_id": _id})
            if existing is None:
                continue  # released meanwhile (its request never started): the key is free again
            if existing["operation_id"] == operation_id:
                return None
            if micros_of(existing, "expires_us", "expires_at") > to_micros(now):
                return IdempotencyRecord(
                    existing["request_hash"],
                    existing["operation_id"],
                    as_utc(existing["created_at"]),  # type: ignore[arg-type]
                )
            if await compare_and_swap(self.collection, _id, existing.get("rev"), fields):
                return None
        raise RuntimeError("idempotency key is contended")  # pragma: no cover

    async def release(self, caller: str, key: str, operation_id: str) -> bool:
        """Free the key of a request whose operation is known never to exist, so that the client's retry
        can run; whether it did (False when the key is bound to another operation by now)."""
        _id = record_id(caller, key)
        existing = await self.collection.find_one({"_id": _id})
        if existing is None or existing["operation_id"] != operation_id:
            return False
        released = await self.collection.delete_one({"_id": _id, "rev": existing.get("rev")})
        return released.deleted_count == 1
