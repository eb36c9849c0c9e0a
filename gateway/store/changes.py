"""The change feed: every change of an event's status, schedule or recordings, numbered in order, so that
every gateway replica can tell its subscribers, whichever replica saw the change.

Numbers come from one counter document (`$inc` is atomic on a single document); a writer takes a block
of numbers, then inserts its changes. A reader follows the numbers and waits a moment on a gap, since a
writer that took a number may not have inserted it yet.

One change, one message: a change is an event's move to a revision (the events index swaps each
revision once), and before it is numbered its key `"<event _id>@<rev>"` is inserted under a unique `_id`
(collection `change_keys`). Whoever writes it, and however often (two replicas, a retry), it is numbered
and told once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import BulkWriteError, ConnectionFailure

from gateway.model import Event, utcnow
from gateway.store.mongo import Database, ensure_index, new_write_token, utc_collection

RETENTION = timedelta(days=1)
#: the fields whose change is worth telling a subscriber
WATCHED = ("status", "vendor_status", "is_live", "scheduled_start", "scheduled_end", "has_recording")


@dataclass(frozen=True, slots=True)
class Change:
    seq: int
    at: datetime
    event: Event
    #: whether a watched field changed (subscribers hear only of those); any other change to what is stored
    #: of the event is told too, for what caches answers made from it
    watched: bool = True


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


_DUPLICATE_KEY = 11000


def change_key(event: Event, rev: int) -> str:
    """What makes a change one: the event and the revision it moved to."""
    return f"{event.source.value}:{event.native_id}@{rev}"


class ChangeFeed:
    def __init__(self, db: Database) -> None:
        self._changes = utc_collection(db, "changes")
        self._keys = utc_collection(db, "change_keys")
        self._counters = utc_collection(db, "counters")

    async def ensure_indexes(self) -> None:
        await ensure_index(self._changes, [("expires_at", 1)], expireAfterSeconds=0)
        await ensure_index(self._keys, [("expires_at", 1)], expireAfterSeconds=0)

    async def publish(self, changes: Sequence[tuple[Event, int]], *, quiet: Sequence[tuple[Event, int]] = ()) -> None:
        """Tell each event's move to its revision (`(event, rev)`), unless it was told already; `quiet`
        moves changed none of the watched fields."""
        keyed = {change_key(event, rev): (event, False) for event, rev in quiet}
        keyed.update({change_key(event, rev): (event, True) for event, rev in changes})
        if not keyed:
            return
        fresh = await self._first_to_tell(list(keyed))
        await self._number([told for key, told in keyed.items() if key in fresh])

    async def _first_to_tell(self, keys: list[str]) -> set[str]:
        """The keys this writer inserted first, of `keys`: those changes are its to number."""
        now = utcnow()
        token = new_write_token()
        docs = [{"_id": key, "token": token, "expires_at": now + RETENTION} for key in keys]
        try:
            await self._keys.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != _DUPLICATE_KEY for error in errors):
                raise
            return set(keys) - {keys[int(error["index"])] for error in errors}
        except ConnectionFailure:
            # The reply was lost: the keys that hold this writer's token are the ones it inserted.
            return {doc["_id"] async for doc in self._keys.find({"_id": {"$in": keys}, "token": token})}
        return set(keys)

    async def _number(self, events: list[tuple[Event, bool]]) -> None:
        if not events:
            return
        counter = await self._counters.find_one_and_update(
            {"_id": "changes"}, {"$inc": {"seq": len(events)}}, upsert=True, return_document=ReturnDocument.AFTER
        )
        assert counter is not None
        first = int(counter["seq"]) - len(events) + 1
        now = utcnow()
        docs = []
        for offset, (event, watched) in enumerate(events):
            event_doc = event.to_doc()
            event_doc.pop("raw", None)
            docs.append(
                {
                    "_id": first + offset,
                    "at": now,
                    "expires_at": now + RETENTION,
                    "event": event_doc,
                    "watched": watched,
                }
            )
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
        return [
            Change(int(doc["_id"]), doc["at"], Event.from_doc(doc["event"]), bool(doc.get("watched", True)))
            async for doc in cursor
        ]
