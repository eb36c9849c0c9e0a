"""Conformance of the events index's shapes: the compare-and-swap of every write, ordered by answers'
integer microseconds among neighbours within one second, the deletions of a listing, and the window
filters on the scheduled start, read by `find` and counted by `count_documents` alike."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from gateway.model import Event, Source, Status
from gateway.store.changes import ChangeFeed
from gateway.store.conformance.registry import Check, check, expect
from gateway.store.events import EventFilter, EventStore
from gateway.store.mongo import Database

#: a few milliseconds into a second: every instant of a check shares its whole second
T0 = datetime(2026, 3, 1, 12, 0, 0, 3000, tzinfo=UTC)
_ORDER = [Status.SCHEDULED, Status.STARTING, Status.LIVE, Status.ENDED]


def _event(native_id: str, status: Status = Status.SCHEDULED, start: datetime | None = None) -> Event:
    return Event(
        source=Source.STREAMLOOP_STREAM,
        native_id=native_id,
        status=status,
        vendor_status=status.value.lower(),
        is_live=status is Status.LIVE,
        title="Same title",
        scheduled_start=start,
        raw={"id": native_id},
    )


async def _statuses(events: EventStore, native_ids: list[str]) -> dict[str, Status]:
    found = await events.get_many(Source.STREAMLOOP_STREAM, native_ids)
    return {native_id: cached.event.status for native_id, cached in found.items()}


@check(
    "events.put_many",
    "find({_id: {$in}}) of rev and fetched_us, then update_one({_id, source, native_id, rev}, upsert) per event",
)
async def put_many(db: Database) -> None:
    feed = ChangeFeed(db)
    events = EventStore(db, feed=feed)
    # Neighbours, answered 1 ms apart within one second, some stored first as older answers.
    await events.put_many([_event(f"s{n}") for n in range(4)], T0)
    for gap in (timedelta(microseconds=1), timedelta(milliseconds=2), timedelta(milliseconds=996)):
        await events.put_many([_event("s1", Status.STARTING)], T0 + gap)
        await events.put_many([_event("s1", Status.SCHEDULED)], T0 + gap - timedelta(microseconds=1))
        statuses = await _statuses(events, ["s0", "s1", "s2"])
        expect(statuses["s1"] is Status.STARTING, f"an answer asked {gap} earlier overwrote a newer one")
        expect(statuses["s0"] is statuses["s2"] is Status.SCHEDULED, f"a write changed a neighbour: {statuses}")
    doc = await db["events"].find_one({"_id": "STREAMLOOP_STREAM:s1"}, {"rev": True, "fetched_us": True})
    expect(doc is not None and doc.get("rev") == 4, f"three swaps after the insert left rev {doc and doc.get('rev')}")

    # Four writers at once, each with an answer of one second, arriving newest first.
    writers = [EventStore(db, feed=feed) for _ in _ORDER]
    answers = [(T0 + timedelta(milliseconds=10 + n), status) for n, status in enumerate(_ORDER)]
    await asyncio.gather(
        *(
            writer.put_many([_event("s3", status)], at)
            for writer, (at, status) in zip(writers, reversed(answers), strict=True)
        )
    )
    statuses = await _statuses(events, ["s2", "s3"])
    expect(statuses["s3"] is Status.ENDED, f"concurrent writers left {statuses['s3'].value}, not the newest answer")
    expect(statuses["s2"] is Status.SCHEDULED, "concurrent writers changed a neighbour")
    told = [change.event.status for change in await feed.after(0) if change.event.native_id == "s3"]
    expect(told == sorted(told, key=_ORDER.index), f"the change feed went back in time: {told}")


@check("events.mark_missing", "find({source, native_id: {$nin}, fetched_us: {$lt}}), then the put_many swap")
async def mark_missing(db: Database) -> None:
    events = EventStore(db)
    listed_at = T0 + timedelta(milliseconds=500)
    await events.put_many([_event("asked_before")], listed_at - timedelta(microseconds=1))
    await events.put_many([_event("asked_after")], listed_at + timedelta(microseconds=1))
    await events.put_many([_event("listed")], listed_at - timedelta(milliseconds=1))
    other = Event(Source.LIVEPUSH_STREAM, "other", Status.SCHEDULED, "scheduled", False, raw={})
    await events.put_many([other], T0)
    marked = await events.mark_missing(Source.STREAMLOOP_STREAM, ["listed"], listed_at)
    statuses = await _statuses(events, ["asked_before", "asked_after", "listed"])
    expect(marked == 1, f"{marked} events marked, not 1")
    expect(statuses["asked_before"] is Status.CANCELLED, "an event asked for 1 µs before the listing stayed")
    expect(statuses["asked_after"] is Status.SCHEDULED, "an event asked for 1 µs after the listing was marked")
    expect(statuses["listed"] is Status.SCHEDULED, "a listed event was marked")
    kept = await events.get_many(Source.LIVEPUSH_STREAM, ["other"])
    expect(kept["other"].event.status is Status.SCHEDULED, "another source's event was marked")
    # An answer asked before the listing began, landing after it, does not bring the event back.
    await events.put_many([_event("asked_before", Status.LIVE)], listed_at - timedelta(milliseconds=1))
    statuses = await _statuses(events, ["asked_before"])
    expect(statuses["asked_before"] is Status.CANCELLED, "an answer older than the listing undid its deletion")


@check(
    "events.filter_by_start",
    "find and count_documents of {$and: [{start_us: {$gte}}, {start_us: {$lt}}]} among starts within one second",
)
async def filter_by_start(db: Database) -> None:
    events = EventStore(db)
    starts = {f"at_{ms}": T0 + timedelta(milliseconds=ms) for ms in (0, 100, 499, 500, 501, 900)}
    await events.put_many([_event(name, start=start) for name, start in starts.items()], T0)
    await events.put_many([_event("no_start")], T0)
    windows = [
        (T0 + timedelta(milliseconds=500), None),
        (None, T0 + timedelta(milliseconds=500)),
        (T0 + timedelta(milliseconds=100), T0 + timedelta(milliseconds=501)),
        (T0 + timedelta(microseconds=999_999 - 3000), T0 + timedelta(seconds=1)),
    ]
    for low, high in windows:
        wanted = sorted(
            name for name, start in starts.items() if (low is None or start >= low) and (high is None or start < high)
        )
        window = EventFilter(scheduled_from=low, scheduled_to=high)
        page = await events.page(window, first=50)
        listed = sorted(paged.event.native_id for paged in page.events)
        counted = await events.count(window)
        expect(listed == wanted, f"[{low}, {high}) listed {listed}, not {wanted}")
        expect(counted == len(wanted), f"[{low}, {high}) counted {counted}, not {len(wanted)}")


@check(
    "events.touch",
    "update_one({_id, source, native_id, rev}, {$set: {fetched_us, rev}}) of integers alone, then find, "
    "count_documents and sort on the dates and booleans it left",
)
async def touch(db: Database) -> None:
    events = EventStore(db)
    start = T0 + timedelta(days=1)
    await events.put_many([_event("s1", Status.LIVE, start=start), _event("s2", start=start)], T0)
    before = await db["events"].find_one({"_id": "STREAMLOOP_STREAM:s1"})
    # The same answer again, asked later: only the answer's time and the revision are set.
    await events.put_many([_event("s1", Status.LIVE, start=start)], T0 + timedelta(milliseconds=1))
    after = await db["events"].find_one({"_id": "STREAMLOOP_STREAM:s1"})
    expect(before is not None and after is not None, "the event is gone")
    assert before is not None and after is not None
    moved = {key for key in {*before, *after} if before.get(key) != after.get(key)}
    expect(moved == {"fetched_us", "rev"}, f"the touch changed {sorted(moved)}, not fetched_us and rev")
    kinds = {key: type(after[key]).__name__ for key in ("sort_start", "fetched_at", "is_live", "has_recording")}
    wanted_kinds = {"sort_start": "datetime", "fetched_at": "datetime", "is_live": "bool", "has_recording": "bool"}
    expect(kinds == wanted_kinds, f"the touch left the types {kinds}")
    window = EventFilter(scheduled_from=start, scheduled_to=start + timedelta(seconds=1), is_live=True)
    listed = [paged.event.native_id for paged in (await events.page(window, first=10)).events]
    expect(listed == ["s1"], f"a live-and-dated window listed {listed} after the touch, not s1")
    expect(await events.count(window) == 1, "a live-and-dated window counted other than 1 after the touch")
    found = await events.get_many(Source.STREAMLOOP_STREAM, ["s1"])
    expect(found["s1"].fetched_at == T0 + timedelta(milliseconds=1), "the touch's answer time was not read back")


CHECKS: tuple[Check, ...] = (put_many, mark_missing, filter_by_start, touch)
