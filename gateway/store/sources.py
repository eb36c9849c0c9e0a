"""When each source was last listed completely from its vendor, to tell when its index is stale."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.model import Source
from gateway.store.mongo import Collection, Database, utc_collection


class SourceListings:
    def __init__(self, db: Database) -> None:
        self._listings: Collection = utc_collection(db, "source_listings")

    async def listed_at(self, source: Source) -> datetime | None:
        listing = await self._listings.find_one({"_id": source.value})
        return None if listing is None else listing["listed_at"]

    async def record_listing(self, source: Source, at: datetime) -> None:
        at = at.replace(tzinfo=UTC) if at.tzinfo is None else at
        # A replacement rather than `$set`, which nx-27017 would store as text (see
        # `FORCE_DOCUMENT_REWRITE`); the document holds nothing else. It names its `_id` because
        # nx-27017's replacing upsert takes none from the filter (it would insert under a new ObjectId).
        listing = {"_id": source.value, "listed_at": at}
        await self._listings.replace_one({"_id": source.value}, listing, upsert=True)
