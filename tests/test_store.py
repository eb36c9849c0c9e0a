"""The MongoDB store against a real server: the embedded one, or MongoDB itself when MONGODB_URI is set."""

from __future__ import annotations

import asyncio
from collections import Counter
from collections.abc import AsyncIterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import AsyncMongoClient

from gateway.model import Event, Recording, Source, Status, utcnow
from gateway.store import Store, connect
from gateway.store.cursors import KeysetPosition
from gateway.store.events import FAR_FUTURE, EventFilter, EventStore
from gateway.store.leases import Leases
from gateway.store.sources import SourceListings
from tests.conftest import CommandCounter

pytestmark = pytest.mark.mongodb

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def make_event(
    native_id: str,
    source: Source = Source.LOOP_CALL,
    *,
    start: datetime | None = None,
    title: str | None = None,
    status: Status = Status.SCHEDULED,
    is_live: bool = False,
    extra: dict[str, Any] | None = None,
) -> Event:
    return Event(
        source=source,
        native_id=native_id,
        status=status,
        vendor_status=status.value.lower(),
        is_live=is_live,
        title=title if title is not None else f"Event {native_id}",
        scheduled_start=start,
        extra=extra or {},
    )


def raw_of(event: Event) -> dict[str, Any]:
    return {"id": event.native_id, "name": event.title}


def stored(*events: Event) -> list[Event]:
    """The events as a vendor adapter hands them over: each with the vendor object it came from."""
    for event in events:
        event.raw = raw_of(event)
    return list(events)


def order_key(event: Event) -> tuple[datetime, str]:
    """The paging order: start to the second (none last), then `_id`."""
    start = FAR_FUTURE if event.scheduled_start is None else event.scheduled_start.replace(microsecond=0)
    return (start, f"{event.source.value}:{event.native_id}")


@pytest.fixture
def events(mongo_db: Any) -> EventStore:
    return EventStore(mongo_db)


@pytest.fixture
async def counted(mongo_uri: str, mongo_db: Any) -> AsyncIterator[tuple[EventStore, Counter[str]]]:
    """An event store over the test's database whose client counts the commands it sends."""
    listener = CommandCounter()
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True, event_listeners=[listener])
    try:
        yield EventStore(client[mongo_db.name]), listener.commands
    finally:
        await client.close()


# --- reading and writing -------------------------------------------------------------------------


async def test_an_event_round_trips_with_aware_utc_datetimes(events: EventStore) -> None:
    event = Event(
        source=Source.LOOP_CALL,
        native_id="1234",
        status=Status.ENDED,
        vendor_status="ended",
        is_live=False,
        title="Quarterly all-hands",
        scheduled_start=T0,
        scheduled_end=T0 + timedelta(hours=1),
        started_at=T0 + timedelta(minutes=2, milliseconds=250),
        ended_at=T0 + timedelta(minutes=58),
        created_at=T0 - timedelta(days=2),
        updated_at=T0 + timedelta(hours=1),
        host_id="host-7",
        recordings=[Recording(url="https://rec.example/1", ready_at=T0 + timedelta(hours=2), native_id="r1")],
        metadata={"team": "ops", "tags": ["a", "b"]},
        extra={"stream_call_type": "livestream", "recording_ready_at": T0 + timedelta(hours=2)},
    )
    fetched_at = T0 + timedelta(hours=3)
    await events.put_many(stored(event), fetched_at)

    cached = (await events.get_many(Source.LOOP_CALL, ["1234"]))["1234"]

    assert cached.event == event
    assert cached.fetched_at == fetched_at
    assert cached.age(fetched_at + timedelta(seconds=90)) == 90.0
    times = [
        cached.fetched_at,
        cached.event.scheduled_start,
        cached.event.started_at,
        cached.event.recordings[0].ready_at,
        cached.event.extra["recording_ready_at"],
    ]
    for value in times:
        assert isinstance(value, datetime)
        assert value.tzinfo is UTC


async def test_the_stored_document_has_the_index_fields(events: EventStore, mongo_db: Any) -> None:
    with_start = make_event("1", start=T0, title="Launch Party")
    without_start = make_event("2", Source.LIVEPUSH_STREAM)
    await events.put_many(stored(with_start, without_start), T0)

    doc = await mongo_db["events"].find_one({"_id": "LOOP_CALL:1"})
    assert doc["source"] == "LOOP_CALL"
    assert doc["native_id"] == "1"
    assert doc["sort_start"] == T0
    assert doc["title_lc"] == "launch party"
    assert doc["raw"] == {"id": "1", "name": "Launch Party"}
    assert doc["fetched_at"] == T0
    assert doc["recordings"] == []
    assert doc["extra"] == {}
    no_start = await mongo_db["events"].find_one({"_id": "LIVEPUSH_STREAM:2"})
    assert no_start["scheduled_start"] is None
    assert no_start["sort_start"] == FAR_FUTURE


async def test_get_many_is_one_query_and_returns_only_stored_events_of_that_source(
    events: EventStore, counted: tuple[EventStore, Counter[str]]
) -> None:
    await events.put_many(
        stored(make_event("1"), make_event("2"), make_event("3"), make_event("1", Source.LOOP_SESSION)), T0
    )
    store, commands = counted

    found = await store.get_many(Source.LOOP_CALL, ["1", "3", "404", "1"])

    assert sorted(found) == ["1", "3"]
    assert found["1"].event.source is Source.LOOP_CALL
    assert dict(commands) == {"find": 1}
    assert await store.get_many(Source.LOOP_CALL, []) == {}
    assert dict(commands) == {"find": 1}


async def test_put_many_is_one_read_of_the_revisions_and_one_bulk_write(
    counted: tuple[EventStore, Counter[str]],
) -> None:
    store, commands = counted

    await store.put_many(stored(*(make_event(str(n), start=T0) for n in range(25))), T0)
    assert dict(commands) == {"find": 1, "update": 1}

    await store.put_many([], T0)
    assert dict(commands) == {"find": 1, "update": 1}


async def test_a_page_is_one_query_and_one_more_with_a_cursor(
    events: EventStore, counted: tuple[EventStore, Counter[str]]
) -> None:
    await events.put_many(stored(*(make_event(str(n), start=T0) for n in range(10))), T0)
    store, commands = counted

    page = await store.page(first=4)
    assert dict(commands) == {"find": 1}
    await store.page(first=4, after=page.end_cursor)
    assert dict(commands) == {"find": 3}


async def test_writing_again_updates_in_place_and_keeps_types(events: EventStore, mongo_db: Any) -> None:
    first = make_event("1", start=T0, title="Draft", extra={"chat_id": "c1"})
    await events.put_many(stored(first, make_event("2")), T0)
    second = replace(first, title="Final", status=Status.LIVE, is_live=True, started_at=T0 + timedelta(minutes=1))
    later = T0 + timedelta(minutes=5)
    await events.put_many(stored(second, make_event("3")), later)

    assert await mongo_db["events"].count_documents({}) == 3
    doc = await mongo_db["events"].find_one({"_id": "LOOP_CALL:1"})
    assert doc["title"] == "Final"
    assert doc["title_lc"] == "final"
    # Dates and booleans written over existing ones stay dates and booleans (nx-27017 would store text
    # and 0/1 for a plain `$set`), so that they still compare in queries.
    for name in ("sort_start", "scheduled_start", "started_at", "fetched_at"):
        assert isinstance(doc[name], datetime), name
    assert doc["is_live"] is True
    assert await mongo_db["events"].count_documents({"fetched_at": {"$gte": later}}) == 2
    assert await events.count(EventFilter(is_live=True)) == 1


async def test_an_unknown_extra_value_does_not_erase_a_known_one(events: EventStore) -> None:
    detail = make_event("7", Source.LIVEPUSH_STREAM, extra={"chat_id": "chat-1", "embed_id": "emb-1", "zone": "eu"})
    from_listing = make_event(
        "7", Source.LIVEPUSH_STREAM, extra={"chat_id": None, "embed_id": None, "zone": "us", "category": "x"}
    )
    await events.put_many(stored(detail), T0)
    await events.put_many(stored(from_listing), T0 + timedelta(minutes=1))

    cached = (await events.get_many(Source.LIVEPUSH_STREAM, ["7"]))["7"]
    assert cached.event.extra == {"chat_id": "chat-1", "embed_id": "emb-1", "zone": "us", "category": "x"}


async def test_an_event_read_back_and_written_again_keeps_its_vendor_object(events: EventStore, mongo_db: Any) -> None:
    await events.put_many(stored(make_event("9", title="Kept")), T0)
    cached = (await events.get_many(Source.LOOP_CALL, ["9"]))["9"]
    assert cached.event.raw is None  # reads leave the vendor object out
    await events.put_many([cached.event.deleted()], T0 + timedelta(minutes=1))

    doc = await mongo_db["events"].find_one({"_id": "LOOP_CALL:9"})
    assert doc["status"] == "CANCELLED"
    assert doc["raw"] == raw_of(make_event("9", title="Kept"))


async def test_an_older_answer_never_overwrites_a_newer_copy(events: EventStore) -> None:
    await events.put_many(stored(make_event("5", status=Status.LIVE, is_live=True)), T0 + timedelta(minutes=2))
    # A read sent before that write, answered after it, arrives with the old state: it is left out, and
    # the rest of its batch is written as usual.
    await events.put_many(stored(make_event("5", status=Status.SCHEDULED), make_event("6")), T0)
    cached = await events.get_many(Source.LOOP_CALL, ["5", "6"])
    assert cached["5"].event.status is Status.LIVE
    assert cached["5"].fetched_at == T0 + timedelta(minutes=2)
    assert "6" in cached


async def test_mark_missing_cancels_only_old_unlisted_events_of_the_source(events: EventStore) -> None:
    listed_at = T0 + timedelta(minutes=10)
    live = make_event("gone", Source.STREAMLOOP_STREAM, status=Status.LIVE, is_live=True)
    await events.put_many(
        stored(live, make_event("kept", Source.STREAMLOOP_STREAM), make_event("gone", Source.LOOP_CALL)), T0
    )
    await events.put_many(stored(make_event("new", Source.STREAMLOOP_STREAM)), listed_at + timedelta(seconds=1))

    marked = await events.mark_missing(Source.STREAMLOOP_STREAM, {"kept"}, listed_at)

    assert marked == 1
    found = await events.get_many(Source.STREAMLOOP_STREAM, ["gone", "kept", "new"])
    gone = found["gone"].event
    assert (gone.status, gone.vendor_status, gone.is_live) == (Status.CANCELLED, "deleted", False)
    assert found["kept"].event.status is Status.SCHEDULED
    assert found["new"].event.status is Status.SCHEDULED
    assert (await events.get_many(Source.LOOP_CALL, ["gone"]))["gone"].event.status is Status.SCHEDULED
    assert await events.count(EventFilter(is_live=False, statuses=[Status.CANCELLED])) == 1
    assert await events.mark_missing(Source.STREAMLOOP_STREAM, {"kept"}, listed_at) == 0


async def test_an_extra_key_that_is_a_path_is_refused(events: EventStore) -> None:
    with pytest.raises(ValueError, match="extra field name"):
        await events.put_many(stored(make_event("1", extra={"a.b": 1})), T0)


# --- write-back ------------------------------------------------------------------------------------


@pytest.fixture
async def later(mongo_uri: str, mongo_db: Any) -> AsyncIterator[tuple[EventStore, Counter[str]]]:
    """An event store whose write-backs wait a minute, unless a listing or `settled()` needs them."""
    listener = CommandCounter(collection="events")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True, event_listeners=[listener])
    store = EventStore(client[mongo_db.name], write_delay=60.0)
    try:
        yield store, listener.commands
    finally:
        await store.settled()
        await client.close()


async def test_write_backs_are_read_by_id_before_they_land_and_land_in_one_bulk_write(
    later: tuple[EventStore, Counter[str]], mongo_db: Any
) -> None:
    store, commands = later
    store.put_many_later(stored(make_event("a")), T0)
    store.put_many_later(stored(make_event("b")), T0)
    store.put_many_later(stored(make_event("a", title="Renamed")), T0 + timedelta(seconds=1))

    found = await store.get_many(Source.LOOP_CALL, ["a", "b"])
    assert commands == Counter()  # answered from the write-backs, as they will be read back
    assert (found["a"].event.title, found["a"].fetched_at, found["a"].event.raw) == (
        "Renamed",
        T0 + timedelta(seconds=1),
        None,
    )
    assert found["b"].event.title == "Event b"
    assert await mongo_db["events"].count_documents({}) == 0

    await store.settled()
    assert commands == Counter({"find": 1, "update": 1})
    docs = {doc["_id"]: doc async for doc in mongo_db["events"].find()}
    assert docs["LOOP_CALL:a"]["title"] == "Renamed"
    assert docs["LOOP_CALL:a"]["raw"] == raw_of(make_event("a", title="Renamed"))
    assert docs["LOOP_CALL:b"]["title"] == "Event b"


async def test_a_listing_waits_for_the_write_backs(later: tuple[EventStore, Counter[str]]) -> None:
    store, _ = later
    store.put_many_later(stored(make_event("a"), make_event("b")), T0)
    page = await store.page(first=10)
    assert [paged.event.native_id for paged in page.events] == ["a", "b"]
    assert await store.count(EventFilter()) == 2


@pytest.mark.parametrize("reader", ["page", "count"])
async def test_a_listing_waits_for_the_write_backs_pending_when_it_asked_not_for_a_quiet_moment(
    mongo_uri: str, mongo_db: Any, reader: str
) -> None:
    listener = CommandCounter(collection="events")
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True, event_listeners=[listener])
    store = EventStore(client[mongo_db.name], write_delay=0.0)
    listed = asyncio.Event()

    async def keep_writing_back() -> int:
        """Write-backs arriving faster than they land, as under many readers, until the listing is done."""
        for n in range(400):
            if listed.is_set():
                return n
            store.put_many_later(stored(make_event(f"later-{n}")), T0)
            await asyncio.sleep(0.001)
        return 400

    try:
        store.put_many_later(stored(make_event("pending")), T0)
        writer = asyncio.create_task(keep_writing_back())
        await asyncio.sleep(0.005)
        store.put_many_later(stored(make_event("asked-for")), T0)
        if reader == "page":
            seen = [paged.event.native_id for paged in (await store.page(first=500)).events]
            assert {"pending", "asked-for"} <= set(seen)
        else:
            assert await store.count(EventFilter()) >= 2
        bulk_writes_waited_for = listener.commands["update"]
        listed.set()
        written_back = await writer
        # The write under way when it asked, the one holding what was pending, and at most one begun
        # meanwhile: never every write-back that arrived while it waited.
        assert bulk_writes_waited_for <= 4, (bulk_writes_waited_for, written_back)
        assert written_back < 400
    finally:
        listed.set()
        await store.settled()
        await client.close()


async def test_write_backs_of_one_event_land_as_the_writes_one_by_one_would(
    later: tuple[EventStore, Counter[str]],
) -> None:
    store, _ = later
    detail = make_event("7", Source.LIVEPUSH_STREAM, extra={"chat_id": "chat-1", "zone": "eu"})
    from_listing = make_event("7", Source.LIVEPUSH_STREAM, title="Listed", extra={"chat_id": None, "zone": "us"})
    older = make_event("7", Source.LIVEPUSH_STREAM, title="Old news", extra={"zone": "ap"})
    store.put_many_later(stored(detail), T0 + timedelta(minutes=1))
    store.put_many_later([from_listing], T0 + timedelta(minutes=2))  # read back: no vendor object
    store.put_many_later(stored(older), T0)  # asked before both

    for when in ("before", "after"):
        cached = (await store.get_many(Source.LIVEPUSH_STREAM, ["7"]))["7"]
        assert cached.event.title == "Listed", when
        assert cached.event.extra == {"chat_id": "chat-1", "zone": "us"}, when
        assert cached.fetched_at == T0 + timedelta(minutes=2), when
        await store.settled()


async def test_a_write_supersedes_a_write_back_that_has_not_landed(
    later: tuple[EventStore, Counter[str]],
) -> None:
    store, _ = later
    store.put_many_later(stored(make_event("5", title="Read before the change")), T0)
    await store.put_many(stored(make_event("5", title="Changed")), T0 + timedelta(seconds=1))
    assert (await store.get_many(Source.LOOP_CALL, ["5"]))["5"].event.title == "Changed"
    await store.settled()
    assert (await store.get_many(Source.LOOP_CALL, ["5"]))["5"].event.title == "Changed"


async def test_a_write_back_that_cannot_be_stored_is_logged_and_the_rest_land(
    later: tuple[EventStore, Counter[str]], caplog: pytest.LogCaptureFixture
) -> None:
    store, _ = later
    store.put_many_later(stored(make_event("1", extra={"a.b": 1}), make_event("2")), T0)
    await store.settled()
    assert "LOOP_CALL:1 cannot be stored" in caplog.text
    assert set(await store.get_many(Source.LOOP_CALL, ["1", "2"])) == {"2"}


async def test_write_backs_land_on_their_own_after_the_delay(mongo_db: Any) -> None:
    store = EventStore(mongo_db, write_delay=0.01)
    store.put_many_later(stored(make_event("a")), T0)
    # Nothing here asks for the write: it lands when the delay is up.
    for _ in range(1000):
        if await mongo_db["events"].count_documents({}):
            break
        await asyncio.sleep(0.01)
    assert await mongo_db["events"].count_documents({}) == 1


# --- paging ----------------------------------------------------------------------------------------


def sixty_events() -> list[Event]:
    """45 events over 15 start times, three in each second (across sources, a few milliseconds apart,
    which the paging order does not tell apart), and 15 without a start."""
    sources = list(Source)
    made = []
    for n in range(60):
        start = None if n >= 45 else T0 + timedelta(hours=n // 3, milliseconds=(2 - n % 3) * 300)
        made.append(make_event(f"{n:03d}", sources[n % len(sources)], start=start))
    return made


async def walk_forward(events: EventStore, size: int, filter: EventFilter | None = None) -> list[str]:
    seen: list[str] = []
    after = None
    while True:
        page = await events.page(filter, first=size, after=after)
        assert page.has_previous is (after is not None)
        seen.extend(f"{item.event.source.value}:{item.event.native_id}" for item in page.events)
        if page.events:
            assert page.start_cursor == page.events[0].cursor
            assert page.end_cursor == page.events[-1].cursor
        if not page.has_next:
            return seen
        assert len(page.events) == size
        after = page.end_cursor


async def walk_backward(events: EventStore, size: int) -> list[str]:
    seen: list[str] = []
    before = None
    while True:
        page = await events.page(last=size, before=before)
        assert page.has_next is (before is not None)
        seen[:0] = [f"{item.event.source.value}:{item.event.native_id}" for item in page.events]
        if not page.has_previous:
            return seen
        assert len(page.events) == size
        before = page.start_cursor


def ids_in_order(made: list[Event]) -> list[str]:
    return [f"{e.source.value}:{e.native_id}" for e in sorted(made, key=order_key)]


async def test_paging_forward_visits_each_event_once_in_order(events: EventStore) -> None:
    made = sixty_events()
    await events.put_many(stored(*made), T0)

    assert await walk_forward(events, 7) == ids_in_order(made)


async def test_paging_backward_visits_each_event_once_in_order(events: EventStore) -> None:
    made = sixty_events()
    await events.put_many(stored(*made), T0)

    assert await walk_backward(events, 7) == ids_in_order(made)


async def test_paging_forward_and_back_again_returns_the_same_page(events: EventStore) -> None:
    await events.put_many(stored(*sixty_events()), T0)
    page_one = await events.page(first=7)
    page_two = await events.page(first=7, after=page_one.end_cursor)

    back = await events.page(last=7, before=page_two.start_cursor)

    assert [item.cursor for item in back.events] == [item.cursor for item in page_one.events]
    assert back.has_previous is False
    assert back.has_next is True


async def test_a_filtered_walk_pages_within_the_filter(events: EventStore) -> None:
    made = sixty_events()
    await events.put_many(stored(*made), T0)
    wanted = [Source.LOOP_CALL, Source.LIVEPUSH_STREAM]

    seen = await walk_forward(events, 4, EventFilter(sources=wanted))

    assert seen == ids_in_order([e for e in made if e.source in wanted])


def travelled_over(position: KeysetPosition, round_number: int, *, forward: bool) -> Event:
    """A new event the walk has already passed: it must not be listed."""
    if forward:
        at = T0 + timedelta(days=1) if position.sort_start == FAR_FUTURE else position.sort_start
        return make_event(f"passed-{round_number:02d}", start=at - timedelta(milliseconds=1))
    return make_event(f"zz-passed-{round_number:02d}", Source.STREAMLOOP_STREAM)


def still_ahead(round_number: int, *, forward: bool) -> Event:
    """A new event the walk has yet to reach: it must be listed."""
    if forward:
        return make_event(f"zz-ahead-{round_number:02d}", Source.STREAMLOOP_STREAM)
    return make_event(f"ahead-{round_number:02d}", start=T0 - timedelta(days=1, minutes=round_number))


def tied_with(position: KeysetPosition, round_number: int) -> Event:
    """A new event at the cursor's own start time: on either side of it, by its id."""
    start = None if position.sort_start == FAR_FUTURE else position.sort_start
    return make_event(f"tie-{round_number:02d}", Source.LOOP_SESSION, start=start)


@pytest.mark.parametrize("forward", [True, False], ids=["forward", "backward"])
async def test_events_inserted_between_pages_appear_once_or_not_at_all(events: EventStore, forward: bool) -> None:
    made = sixty_events()
    await events.put_many(stored(*made), T0)
    seen: list[str] = []
    cursor = None
    passed: list[Event] = []
    ahead: list[Event] = []
    tied: list[Event] = []
    for round_number in range(100):
        if forward:
            page = await events.page(first=7, after=cursor)
            seen.extend(f"{i.event.source.value}:{i.event.native_id}" for i in page.events)
            more, cursor = page.has_next, page.end_cursor
        else:
            page = await events.page(last=7, before=cursor)
            seen.extend(f"{i.event.source.value}:{i.event.native_id}" for i in reversed(page.events))
            more, cursor = page.has_previous, page.start_cursor
        if not more:
            break
        assert cursor is not None
        position = KeysetPosition.decode(cursor)
        batch = [
            travelled_over(position, round_number, forward=forward),
            still_ahead(round_number, forward=forward),
            tied_with(position, round_number),
        ]
        passed.append(batch[0])
        ahead.append(batch[1])
        tied.append(batch[2])
        await events.put_many(stored(*batch), T0)

    def ids(group: list[Event]) -> set[str]:
        return {f"{e.source.value}:{e.native_id}" for e in group}

    assert len(seen) == len(set(seen)), "an event was listed twice"
    old_in_travel_order = ids_in_order(made) if forward else ids_in_order(made)[::-1]
    assert [i for i in seen if i in ids(made)] == old_in_travel_order, "an old event was skipped"
    assert ids(ahead) <= set(seen)
    assert not ids(passed) & set(seen)
    every_key = {f"{e.source.value}:{e.native_id}": order_key(e) for e in made + passed + ahead + tied}
    assert seen == sorted(seen, key=every_key.__getitem__, reverse=not forward)


async def test_page_edges(events: EventStore) -> None:
    assert (await events.page(first=5)) == (await events.page(last=5))
    empty = await events.page(first=5)
    assert (empty.events, empty.has_next, empty.has_previous, empty.start_cursor) == ([], False, False, None)

    await events.put_many(stored(*(make_event(str(n), start=T0) for n in range(3))), T0)
    nothing = await events.page(first=0)
    assert nothing.events == [] and nothing.has_next is True
    everything = await events.page(first=3)
    assert len(everything.events) == 3 and everything.has_next is False
    last_one = await events.page(first=5, after=everything.end_cursor)
    assert last_one.events == [] and last_one.has_previous is True and last_one.has_next is False


@pytest.mark.parametrize(
    "arguments",
    [{}, {"first": 1, "last": 1}, {"first": 1, "before": "x"}, {"last": 1, "after": "x"}, {"first": -1}],
)
async def test_page_refuses_mixed_or_missing_directions(events: EventStore, arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        await events.page(**arguments)


@pytest.mark.parametrize(
    "cursor",
    [
        "",
        "not base64 at all!",
        "bm90IGpzb24",
        KeysetPosition(T0, "x").encode()[:-3],
        "WzEsIDJd",
        "WyJub3QgYSBkYXRlIiwgIngiXQ",
    ],
)
async def test_a_malformed_cursor_is_a_value_error(events: EventStore, cursor: str) -> None:
    with pytest.raises(ValueError, match="malformed cursor"):
        await events.page(first=3, after=cursor)


def test_a_cursor_is_url_safe_text_and_round_trips() -> None:
    position = KeysetPosition(T0 + timedelta(milliseconds=5), "LIVEPUSH_STREAM:a/b+c?d")
    cursor = position.encode()
    assert cursor.replace("-", "").replace("_", "").isalnum()
    assert KeysetPosition.decode(cursor) == position


# --- filters ---------------------------------------------------------------------------------------

FILTER_TITLES = ["Show a.b(c) live", "axb(c", "A.B(C in caps", "a.b", "[x]* stars", "plain", None]


def filter_corpus() -> list[Event]:
    made = []
    for n in range(28):
        source = list(Source)[n % 4]
        status = [Status.SCHEDULED, Status.LIVE, Status.ENDED][n % 3]
        start = None if n % 5 == 4 else T0 + timedelta(hours=n)
        title = FILTER_TITLES[n % len(FILTER_TITLES)]
        made.append(
            Event(
                source=source,
                native_id=f"f{n}",
                status=status,
                vendor_status=None,
                is_live=status is Status.LIVE,
                title=title,
                scheduled_start=start,
            )
        )
    return made


def in_window(event: Event, start: datetime | None, end: datetime | None) -> bool:
    if event.scheduled_start is None:
        return False
    return (start is None or event.scheduled_start >= start) and (end is None or event.scheduled_start < end)


FILTER_CASES: list[tuple[str, EventFilter, Any]] = [
    ("no filter", EventFilter(), lambda e: True),
    ("one source", EventFilter(sources=[Source.LOOP_SESSION]), lambda e: e.source is Source.LOOP_SESSION),
    (
        "two sources",
        EventFilter(sources=[Source.LOOP_CALL, Source.LIVEPUSH_STREAM]),
        lambda e: e.source in (Source.LOOP_CALL, Source.LIVEPUSH_STREAM),
    ),
    ("no sources", EventFilter(sources=[]), lambda e: False),
    (
        "statuses",
        EventFilter(statuses=[Status.LIVE, Status.ENDED]),
        lambda e: e.status is not Status.SCHEDULED,
    ),
    ("live", EventFilter(is_live=True), lambda e: e.is_live),
    ("not live", EventFilter(is_live=False), lambda e: not e.is_live),
    (
        "window",
        EventFilter(scheduled_from=T0 + timedelta(hours=3), scheduled_to=T0 + timedelta(hours=11)),
        lambda e: in_window(e, T0 + timedelta(hours=3), T0 + timedelta(hours=11)),
    ),
    (
        "from only",
        EventFilter(scheduled_from=T0 + timedelta(hours=20)),
        lambda e: in_window(e, T0 + timedelta(hours=20), None),
    ),
    (
        "to only",
        EventFilter(scheduled_to=T0 + timedelta(hours=5)),
        lambda e: in_window(e, None, T0 + timedelta(hours=5)),
    ),
    (
        "title metacharacters",
        EventFilter(title_contains="a.b(c"),
        lambda e: e.title and "a.b(c" in e.title.lower(),
    ),
    ("title class and star", EventFilter(title_contains="[X]*"), lambda e: e.title == "[x]* stars"),
    ("title case-insensitive", EventFilter(title_contains="PLAIN"), lambda e: e.title == "plain"),
    ("empty title text", EventFilter(title_contains=""), lambda e: True),
    (
        "combined",
        EventFilter(
            sources=[Source.LOOP_CALL, Source.STREAMLOOP_STREAM, Source.LIVEPUSH_STREAM],
            statuses=[Status.SCHEDULED, Status.LIVE],
            scheduled_from=T0 + timedelta(hours=1),
            title_contains="a.b",
        ),
        lambda e: (
            e.source is not Source.LOOP_SESSION
            and e.status is not Status.ENDED
            and in_window(e, T0 + timedelta(hours=1), None)
            and e.title is not None
            and "a.b" in e.title.lower()
        ),
    ),
]


@pytest.mark.parametrize(("name", "event_filter", "expected"), FILTER_CASES, ids=[c[0] for c in FILTER_CASES])
async def test_each_filter_selects_exactly_its_events_and_count_agrees(
    events: EventStore, name: str, event_filter: EventFilter, expected: Any
) -> None:
    made = filter_corpus()
    await events.put_many(stored(*made), T0)
    wanted = ids_in_order([e for e in made if expected(e)])

    page = await events.page(event_filter, first=100)

    assert [f"{i.event.source.value}:{i.event.native_id}" for i in page.events] == wanted
    assert await events.count(event_filter) == len(wanted)


async def test_the_title_filter_follows_title_changes(events: EventStore) -> None:
    await events.put_many(stored(make_event("1", title="Old name")), T0)
    await events.put_many(stored(make_event("1", title="New name")), T0)

    assert await events.count(EventFilter(title_contains="old")) == 0
    assert await events.count(EventFilter(title_contains="NEW")) == 1


# --- indexes ---------------------------------------------------------------------------------------


async def index_keys(collection: Any) -> list[list[tuple[str, int]]]:
    return [list(index["key"].items()) async for index in await collection.list_indexes()]


async def test_ensure_indexes_is_idempotent_and_finds_indexes_by_keys(mongo_db: Any) -> None:
    await mongo_db["events"].create_index([("source", 1), ("native_id", 1)], unique=True, name="by_hand")
    store = Store(mongo_db)

    await store.ensure_indexes()
    await store.ensure_indexes()

    keys = await index_keys(mongo_db["events"])
    for wanted in (
        [("source", 1), ("native_id", 1)],
        [("sort_start", 1), ("sort_id", 1)],
        [("source", 1), ("sort_start", 1), ("sort_id", 1)],
        [("status", 1), ("sort_start", 1), ("sort_id", 1)],
    ):
        assert keys.count(wanted) == 1, wanted
    assert (await index_keys(mongo_db["leases"])).count([("expires_at", 1)]) == 1


async def test_writes_work_with_the_indexes_in_place(mongo_db: Any) -> None:
    store = Store(mongo_db)
    await store.ensure_indexes()
    await store.events.put_many(stored(make_event("1", start=T0), make_event("2")), T0)
    await store.events.put_many(stored(make_event("1", start=T0 + timedelta(hours=1))), T0)
    assert await store.events.count(EventFilter()) == 2
    assert await store.leases.acquire("job", "a", 30)
    assert [i.event.native_id for i in (await store.events.page(first=5)).events] == ["1", "2"]


# --- leases ----------------------------------------------------------------------------------------


async def test_only_one_of_two_contenders_takes_a_lease(mongo_db: Any) -> None:
    leases = Leases(mongo_db)
    await leases.ensure_indexes()

    outcomes = await asyncio.gather(leases.acquire("refresh", "a", 30), leases.acquire("refresh", "b", 30))

    assert sorted(outcomes) == [False, True]
    winner, loser = ("a", "b") if outcomes[0] else ("b", "a")
    assert await leases.holder("refresh") == winner
    assert await leases.acquire("refresh", loser, 30) is False


async def test_an_expired_lease_can_be_taken_over(mongo_db: Any) -> None:
    leases = Leases(mongo_db)
    now = utcnow()
    assert await leases.acquire("refresh", "a", 5, now=now)
    assert await leases.acquire("refresh", "b", 5, now=now + timedelta(seconds=4)) is False
    assert await leases.holder("refresh", now=now + timedelta(seconds=4)) == "a"

    later = now + timedelta(seconds=6)
    assert await leases.holder("refresh", now=later) is None
    assert await leases.acquire("refresh", "b", 5, now=later)
    assert await leases.holder("refresh", now=later) == "b"
    assert await leases.acquire("refresh", "a", 5, now=later) is False


async def test_a_lease_lasts_its_ttl_to_the_microsecond(mongo_db: Any) -> None:
    leases = Leases(mongo_db)
    now = utcnow().replace(microsecond=400_000)
    assert await leases.acquire("refresh", "a", 2, now=now)

    assert await leases.holder("refresh", now=now + timedelta(seconds=1, microseconds=999_999)) == "a"
    assert await leases.holder("refresh", now=now + timedelta(seconds=2)) is None
    assert await leases.acquire("refresh", "b", 2, now=now + timedelta(seconds=1, microseconds=999_999)) is False
    assert await leases.acquire("refresh", "b", 2, now=now + timedelta(seconds=2))


async def test_the_holder_renews_and_releases(mongo_db: Any) -> None:
    leases = Leases(mongo_db)
    now = utcnow()
    assert await leases.acquire("refresh", "a", 5, now=now)
    assert await leases.acquire("refresh", "a", 30, now=now + timedelta(seconds=3))  # renewed in time

    assert await leases.holder("refresh", now=now + timedelta(seconds=10)) == "a"
    lease = await mongo_db["leases"].find_one({"_id": "refresh"})
    assert isinstance(lease["expires_at"], datetime)

    assert await leases.release("refresh", "b") is False
    assert await leases.holder("refresh") == "a"
    assert await leases.release("refresh", "a") is True
    assert await leases.holder("refresh") is None
    assert await leases.acquire("refresh", "b", 30)


async def test_leases_are_independent_by_name(mongo_db: Any) -> None:
    leases = Leases(mongo_db)
    assert await leases.acquire("one", "a", 30)
    assert await leases.acquire("two", "b", 30)
    assert (await leases.holder("one"), await leases.holder("two"), await leases.holder("three")) == (
        "a",
        "b",
        None,
    )


# --- source listings and the bundle ----------------------------------------------------------------


async def test_source_listings_record_the_latest_listing(mongo_db: Any) -> None:
    listings = SourceListings(mongo_db)
    assert await listings.listed_at(Source.LOOP_CALL) is None

    await listings.record_listing(Source.LOOP_CALL, T0)
    await listings.record_listing(Source.LOOP_CALL, T0 + timedelta(minutes=5))
    await listings.record_listing(Source.LIVEPUSH_STREAM, T0)

    listed_at = await listings.listed_at(Source.LOOP_CALL)
    assert listed_at == T0 + timedelta(minutes=5)
    assert listed_at is not None and listed_at.tzinfo is UTC
    assert await listings.listed_at(Source.LIVEPUSH_STREAM) == T0
    assert await listings.listed_at(Source.STREAMLOOP_STREAM) is None


async def test_connect_gives_a_working_store(mongo_uri: str, mongo_db: Any) -> None:
    client, store = connect(mongo_uri, mongo_db.name)
    try:
        assert await store.ping() >= 0
        await store.ensure_indexes()
        await store.events.put_many(stored(make_event("1", start=T0)), T0)
        assert (await store.events.get_many(Source.LOOP_CALL, ["1"]))["1"].fetched_at.tzinfo is UTC
    finally:
        await client.close()
