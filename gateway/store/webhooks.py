"""Webhook deliveries already applied, so that a replayed delivery changes nothing, and the signed
messages already received, so that none is acted on twice."""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta

from pymongo.errors import DuplicateKeyError

from gateway.model import utcnow
from gateway.store.mongo import Database, ensure_index, utc_collection

RETENTION = timedelta(days=7)


class WebhookDeliveries:
    def __init__(self, db: Database) -> None:
        self.collection = utc_collection(db, "webhook_deliveries")
        self.messages = utc_collection(db, "webhook_messages")

    async def ensure_indexes(self) -> None:
        await ensure_index(self.collection, [("expires_at", 1)], expireAfterSeconds=0)
        await ensure_index(self.messages, [("expires_at", 1)], expireAfterSeconds=0)

    async def seen(self, delivery_id: str) -> bool:
        doc = await self.collection.find_one({"_id": delivery_id, "expires_at": {"$gt": utcnow()}})
        return doc is not None

    async def record(self, delivery_id: str) -> None:
        now = utcnow()
        # A concurrent delivery of the same event may have been applied too: applying one is idempotent.
        with contextlib.suppress(DuplicateKeyError):
            await self.collection.insert_one({"_id": delivery_id, "at": now, "expires_at": now + RETENTION})

    async def first_sight(self, message_key: str, expires_at: datetime) -> bool:
        """Records a signed message; False when it was received before (a replay). A message is kept until
        its timestamp is too old to be accepted anyway, so a record that expired can never be needed."""
        try:
            await self.messages.insert_one({"_id": message_key, "at": utcnow(), "expires_at": expires_at})
        except DuplicateKeyError:
            return False
        return True
