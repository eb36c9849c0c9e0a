"""What this process stored last of an event's `extra` stands in for a cache read where a vendor's answer
leaves values unknown (Livepush's list has no chat or embed ids): checked against the stored document after
each kind of write, and not given where it may be out of date."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from gateway.model import Event, Source, Status
from gateway.store.events import EventStore

T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
KEY = (Source.LIVEPUSH_STREAM, "st_1")


def detail(chat_id: str = "mc_1", zone: str = "zn_eu") -> Event:
    """A stream as its own endpoint answers: chat and embed ids known."""
    return _stream({"chat_id": chat_id, "embed_id": "em_1", "zone": zone})


def listed(zone: str = "zn_eu") -> Event:
    """A stream as the owner's list answers: no chat or embed id."""
    return _stream({"chat_id": None, "embed_id": None, "zone": zone})


def _stream(extra: dict[str, Any]) -> Event:
    return Event(
        source=KEY[0],
        native_id=KEY[1],
        status=Status.SCHEDULED,
        vendor_status=None,
        is_live=False,
        title="Push",
        raw={"id": KEY[1], "name": "Push"},
        extra=extra,
    )


async def stored(db: Any) -> dict[str, Any]:
    doc = await db.events.find_one({"_id": f"{KEY[0].value}:{KEY[1]}"}, {"extra": True})
    assert doc is not None
    return dict(doc["extra"])


async def test_after_each_kind_of_swap_what_is_known_is_what_is_stored(mongo_db: Any) -> None:
    events = EventStore(mongo_db, memo_ttl=60.0)
    assert events.stored_extra(*KEY) is None  # never swapped here
    await events.put_many([detail()], T0)
    assert (
        events.stored_extra(*KEY) == await stored(mongo_db) == {"chat_id": "mc_1", "embed_id": "em_1", "zone": "zn_eu"}
    )
    # A listing's answer: what it does not know keeps the stored value, in the store and here.
    await events.put_many([listed(zone="zn_us")], T0 + timedelta(seconds=1))
    assert (
        events.stored_extra(*KEY) == await stored(mongo_db) == {"chat_id": "mc_1", "embed_id": "em_1", "zone": "zn_us"}
    )
    # The same answer again only moves its time (a touch): nothing else changes.
    await events.put_many([listed(zone="zn_us")], T0 + timedelta(seconds=2))
    assert events.stored_extra(*KEY) == await stored(mongo_db)


async def test_over_another_writers_document_what_is_known_comes_from_the_read_before_the_swap(
    mongo_db: Any,
) -> None:
    other, events = EventStore(mongo_db, memo_ttl=60.0), EventStore(mongo_db, memo_ttl=60.0)
    await other.put_many([detail(chat_id="mc_other")], T0)
    # Never swapped here: the swap reads the stored state first, `extra` with it.
    await events.put_many([listed()], T0 + timedelta(seconds=1))
    assert events.stored_extra(*KEY) == await stored(mongo_db)
    assert events.stored_extra(*KEY) == {"chat_id": "mc_other", "embed_id": "em_1", "zone": "zn_eu"}
    # The other writer moves it on: this process's swap over what it knew is beaten, read again, and what
    # it knows afterwards holds the other writer's value.
    await other.put_many([detail(chat_id="mc_newer")], T0 + timedelta(seconds=2))
    assert events.stored_extra(*KEY) == {"chat_id": "mc_other", "embed_id": "em_1", "zone": "zn_eu"}
    await events.put_many([listed(zone="zn_us")], T0 + timedelta(seconds=3))
    assert events.stored_extra(*KEY) == await stored(mongo_db)
    assert events.stored_extra(*KEY) == {"chat_id": "mc_newer", "embed_id": "em_1", "zone": "zn_us"}


async def test_what_may_be_out_of_date_is_not_given(mongo_db: Any) -> None:
    # Without a memo, nothing read is answered again from memory, and neither is this.
    unremembering = EventStore(mongo_db, memo_ttl=0.0)
    await unremembering.put_many([detail()], T0)
    assert unremembering.stored_extra(*KEY) is None

    events = EventStore(mongo_db, memo_ttl=60.0, write_delay=60.0)
    await events.put_many([detail()], T0 + timedelta(seconds=1))
    assert events.stored_extra(*KEY) is not None
    # A change heard of (the change feed carries another replica's writes).
    events.heard_of(*KEY)
    assert events.stored_extra(*KEY) is None
    # The same answer again moves only its time, without reading: still not known...
    await events.put_many([detail()], T0 + timedelta(seconds=2))
    assert events.stored_extra(*KEY) is None
    # ... until a read finds the revision this process swapped last.
    await events.get_keys([KEY])
    assert events.stored_extra(*KEY) == await stored(mongo_db)
    # A write-back of it waiting to land: reads by id answer from that write.
    events.put_many_later([listed(zone="zn_us")], T0 + timedelta(seconds=3))
    assert events.stored_extra(*KEY) is None
    await events.settled()
    assert events.stored_extra(*KEY) == await stored(mongo_db)

    # Swapped longer ago than the memo's time.
    brief = EventStore(mongo_db, memo_ttl=0.05)
    await brief.put_many([detail()], T0 + timedelta(seconds=4))
    assert brief.stored_extra(*KEY) is not None
    await asyncio.sleep(0.1)
    assert brief.stored_extra(*KEY) is None


async def test_a_change_heard_while_a_read_is_out_is_not_undone_by_that_read(mongo_db: Any) -> None:
    events, other = EventStore(mongo_db, memo_ttl=60.0), EventStore(mongo_db, memo_ttl=60.0)
    await events.put_many([detail(chat_id="mc_old")], T0)
    read = events._find_by_ids

    async def read_then_another_replica_writes(ids: Sequence[str]) -> list[Any]:
        docs = await read(ids)
        await other.put_many([detail(chat_id="mc_new")], T0 + timedelta(seconds=1))
        events.heard_of(*KEY)  # as the change feed tells it
        return docs

    events._find_by_ids = read_then_another_replica_writes  # type: ignore[method-assign]
    await events.get_keys([KEY])
    assert events.stored_extra(*KEY) is None


async def test_a_change_heard_while_a_swap_is_out_is_not_undone_by_that_swap(mongo_db: Any) -> None:
    events, other = EventStore(mongo_db, memo_ttl=60.0), EventStore(mongo_db, memo_ttl=60.0)
    await other.put_many([detail(chat_id="mc_old")], T0)
    collection = events._events
    bulk_write = collection.bulk_write

    async def swap_then_another_replica_writes(*args: Any, **kwargs: Any) -> Any:
        result = await bulk_write(*args, **kwargs)
        await other.put_many([detail(chat_id="mc_new")], T0 + timedelta(seconds=2))
        events.heard_of(*KEY)  # as the change feed tells it
        return result

    collection.bulk_write = swap_then_another_replica_writes  # type: ignore[method-assign]
    # Never swapped here: the swap reads the stored state first.
    await events.put_many([listed(zone="zn_us")], T0 + timedelta(seconds=1))
    assert events.stored_extra(*KEY) is None


async def test_what_is_known_holds_dates_as_the_store_does(mongo_db: Any) -> None:
    events = EventStore(mongo_db, memo_ttl=60.0)
    ready = datetime(2026, 6, 1, 12, 0, 0, 123456, tzinfo=UTC)
    await events.put_many([_stream({"chat_id": "mc_1", "ready_at": ready, "live": {"ended_at": ready}})], T0)
    # BSON keeps milliseconds: what is known is what a read gives.
    assert events.stored_extra(*KEY) == await stored(mongo_db)
