"""Webhook deliveries already applied, so that a replayed delivery changes nothing."""

from __future__ import annotations

import contextlib
from datetime import timedelta

from pymongo.errors import DuplicateKeyError

from gateway.model import utcnow
from gateway.store.mongo import Database, ensure_index, utc_collection

RETENTION = timedelta(days=7)


class WebhookDeliveries:
    def __init__(self, db: Database) -> None:
        self.collection = utc_collection(db, "webhook_deliveries")

    async def ensure_indexes(self) -> None:
        await ensure_index(self.collection, [("expires_at", 1)], expireAfterSeconds=0)

    async def seen(self, delivery_id: str) -> bool:
        doc = await self.collection.find_one({"_id": delivery_id, "expires_at": {"$gt": utcnow()}})
        return doc is not None

    async def record(self, delivery_id: str) -> None:
        now = utcnow()
        # A concurrent delivery of the same event may have been applied too: applying one is idempotent.
        with contextlib.suppress(DuplicateKeyError):
            await self.collection.insert_one({"_id": delivery_id, "at": now, "expires_at": now + RETENTION})
