"""A write-back that says what this process stored last moves only the answer's time and the revision,
as integers, instead of rewriting the document: counted in the fields each update sets. What it leaves
keeps its BSON types (dates stay dates that queries compare, booleans stay booleans), and it stays a
compare-and-swap: beaten by another writer, or with the document gone, it is read again and written whole,
and an older answer never lands over a newer one."""

from __future__ import annotations

import dataclasses
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from gateway.model import Event, Source, Status
from gateway.store.events import EventFilter, EventStore

T0 = datetime(2026, 6, 1, 12, 0, 0, tzinfo=UTC)
START = datetime(2026, 7, 1, 18, 0, 0, tzinfo=UTC)
_ID = "STREAMLOOP_STREAM:s1"


class UpdatesSeen(monitoring.CommandListener):
    """The `$set` of every update to `database`.events, in order."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.sets: list[list[str]] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.database and event.command_name == "update":
            self.sets.extend(sorted(update["u"].get("$set", {})) for update in event.command["updates"])

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@pytest.fixture
async def store(mongo_uri: str) -> AsyncIterator[tuple[EventStore, Any, UpdatesSeen]]:
    database = f"test_touch_{uuid.uuid4().hex[:8]}"
    seen = UpdatesSeen(database)
    monitoring.register(seen)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    try:
        yield EventStore(client[database]), client[database], seen
    finally:
        await client.drop_database(database)
        await client.close()


def stream(title: str = "Launch", raw_title: str | None = None) -> Event:
    return Event(
        source=Source.STREAMLOOP_STREAM,
        native_id="s1",
        status=Status.LIVE,
        vendor_status="active",
        is_live=True,
        title=title,
        scheduled_start=START,
        raw={"id": "s1", "name": raw_title or title, "state": "active"},
        extra={"state": "active", "quality": "1080p"},
    )


TOUCH = ["fetched_us", "rev"]


async def test_an_answer_that_says_the_same_moves_only_its_time_and_keeps_every_type(
    store: tuple[EventStore, Any, UpdatesSeen],
) -> None:
    events, db, seen = store
    await events.put_many([stream()], T0)
    first = await db.events.find_one({"_id": _ID})
    await events.put_many([stream()], T0 + timedelta(seconds=1))
    assert seen.sets[-1] == TOUCH
    after = await db.events.find_one({"_id": _ID})
    assert after["rev"] == first["rev"] + 1
    assert after["fetched_us"] == first["fetched_us"] + 1_000_000
    assert {k: v for k, v in after.items() if k not in ("rev", "fetched_us")} == {
        k: v for k, v in first.items() if k not in ("rev", "fetched_us")
    }
    assert isinstance(after["is_live"], bool) and isinstance(after["sort_start"], datetime)
    # Dates are still compared as dates, and the stored copy is read back as the newer answer.
    window = EventFilter(scheduled_from=START - timedelta(days=1), scheduled_to=START + timedelta(days=1), is_live=True)
    assert await events.count(window) == 1
    assert [paged.event.native_id for paged in (await events.page(window, first=5)).events] == ["s1"]
    found = await events.get_many(Source.STREAMLOOP_STREAM, ["s1"])
    assert found["s1"].fetched_at == T0 + timedelta(seconds=1)


async def test_a_change_or_a_new_vendor_object_is_written_whole(store: tuple[EventStore, Any, UpdatesSeen]) -> None:
    events, db, seen = store
    await events.put_many([stream()], T0)
    await events.put_many([stream(title="Renamed")], T0 + timedelta(seconds=1))
    assert "title" in seen.sets[-1]
    await events.put_many([stream(title="Renamed", raw_title="Renamed ")], T0 + timedelta(seconds=2))
    assert "raw" in seen.sets[-1]
    await events.put_many([stream(title="Renamed", raw_title="Renamed ")], T0 + timedelta(seconds=3))
    assert seen.sets[-1] == TOUCH
    doc = await db.events.find_one({"_id": _ID})
    assert doc["title"] == "Renamed" and doc["raw"]["name"] == "Renamed " and doc["rev"] == 4


async def test_a_touch_beaten_by_another_writer_is_read_again_and_never_lands_over_a_newer_answer(
    store: tuple[EventStore, Any, UpdatesSeen],
) -> None:
    events, db, seen = store
    await events.put_many([stream()], T0)
    # Another replica stores an older answer that said something else (its swap was allowed: still newer
    # than the stored one), then this one's unchanged answer, asked later, comes to be written.
    other = EventStore(db)
    await other.put_many([stream(title="Older news")], T0 + timedelta(seconds=1))
    await events.put_many([stream()], T0 + timedelta(seconds=2))
    assert seen.sets[-2] == TOUCH  # over what this process stored: beaten
    assert "title" in seen.sets[-1]  # read again, and written whole
    doc = await db.events.find_one({"_id": _ID})
    assert doc["title"] == "Launch" and doc["fetched_us"] == int((T0 + timedelta(seconds=2)).timestamp() * 1e6)

    # And the other way round: the other writer's answer is newer, so this one's is dropped.
    await other.put_many([stream(title="Newer news")], T0 + timedelta(seconds=4))
    await events.put_many([stream()], T0 + timedelta(seconds=3))
    assert seen.sets[-1] == TOUCH
    doc = await db.events.find_one({"_id": _ID})
    assert doc["title"] == "Newer news"


async def test_a_touch_of_a_document_that_is_gone_writes_it_whole(store: tuple[EventStore, Any, UpdatesSeen]) -> None:
    events, db, seen = store
    await events.put_many([stream()], T0)
    whole = await db.events.find_one({"_id": _ID})
    await db.events.delete_one({"_id": _ID})
    await events.put_many([stream()], T0 + timedelta(seconds=1))
    assert seen.sets[-2] == TOUCH and "title" in seen.sets[-1]
    doc = await db.events.find_one({"_id": _ID})
    assert doc is not None and sorted(doc) == sorted(whole)


async def test_a_write_without_the_vendor_object_leaves_the_stored_one_known(
    store: tuple[EventStore, Any, UpdatesSeen],
) -> None:
    events, db, seen = store
    await events.put_many([stream()], T0)
    # An event read back from the store carries no vendor object: nothing to set but the answer's time.
    await events.put_many([dataclasses.replace(stream(), raw=None)], T0 + timedelta(seconds=1))
    assert seen.sets[-1] == TOUCH
    # The vendor's object it still holds is known to be this one.
    await events.put_many([stream()], T0 + timedelta(seconds=2))
    assert seen.sets[-1] == TOUCH
    doc = await db.events.find_one({"_id": _ID})
    assert doc["raw"] == stream().raw and doc["rev"] == 3
