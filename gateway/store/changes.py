"""The change feed: every change of an event's status, schedule or recordings, numbered in order, so that
every gateway replica can tell its subscribers, whichever replica saw the change.

Numbers come from one counter document (`$inc` is atomic on a single document); a writer takes a block
of numbers, then inserts its changes. A reader follows the numbers and waits a moment on a gap, since a
writer that took a number may not have inserted it yet.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument

from gateway.model import Event, utcnow
from gateway.store.mongo import Database, ensure_index, utc_collection

RETENTION = timedelta(days=1)
#: the fields whose change is worth telling a subscriber
WATCHED = ("status", "vendor_status", "is_live", "scheduled_start", "scheduled_end", "has_recording")


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    at: datetime
    event: Event


def watched_state(doc: dict[str, Any]) -> tuple[Any, ...]:
    """The watched fields of a stored or about-to-be-stored event, comparable with each other (BSON
    keeps datetimes to the millisecond)."""
    return tuple(_comparable(doc.get(name)) for name in WATCHED)


def _comparable(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.replace(microsecond=value.microsecond // 1000 * 1000)
    if isinstance(value, bool | int):
        return bool(value)
    return value


class ChangeFeed:
    def __init__(self, db: Database) -> None:
        self._changes = utc_collection(db, "changes")
        self._counters = utc_collection(db, "counters")

    async def ensure_indexes(self) -> None:
        await ensure_index(self._changes, [("expires_at", 1)], expireAfterSeconds=0)

    async def publish(self, events: list[Event]) -> None:
        if not events:
            return
        counter = await self._counters.find_one_and_update(
            {"_id": "changes"}, {"$inc": {"seq": len(events)}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert counter is not None
        first = int(counter["seq"]) - len(events) + 1
        now = utcnow()
        docs = []
        for offset, event in enumerate(events):
            event_doc = event.to_doc()
            event_doc.pop("raw", None)
            docs.append({"_id": first + offset, "at": now, "expires_at": now + RETENTION, "event": event_doc})
        await self._changes.insert_many(docs, ordered=False)

    async def can_watch(self) -> bool:
        """Whether the server offers change streams (a replica set or a sharded cluster)."""
        hello = await self._changes.database.client.admin.command("hello")
        return "setName" in hello or hello.get("msg") == "isdbgrid"

    async def watch_inserts(self) -> AsyncIterator[None]:
        """Yields each time a change is inserted, by any replica (needs `can_watch()`)."""
        async with await self._changes.watch([{"$match": {"operationType": "insert"}}]) as stream:
            async for _ in stream:
                yield None

    async def last_seq(self) -> int:
        counter = await self._counters.find_one({"_id": "changes"})
        return int(counter["seq"]) if counter else 0

    async def after(self, seq: int, limit: int = 500) -> list[Change]:
        cursor = self._changes.find({"_id": {"$gt": seq}}).sort("_id", 1).limit(limit)
        return [Change(int(doc["_id"]), doc["at"], Event.from_doc(doc["event"])) async for doc in cursor]
