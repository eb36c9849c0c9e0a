"""The index never keeps an older vendor answer over a newer one, whatever the server's date precision,
and subscribers are never told of a move back in time: answers are ordered by when their vendor was
asked, in integer microseconds, and every write is a compare-and-swap on the event's revision."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from gateway.ids import decode_global_id
from gateway.model import Source, Status
from gateway.settings import StreamloopSettings
from gateway.store.changes import ChangeFeed
from gateway.store.events import EventStore
from tests.conftest import SIM_TOKEN, Sim
from tests.gateway_harness import Gateway
from tests.test_mutations import ALL_TARGETS, create, create_input
from tests.test_store import make_event, stored

pytestmark = pytest.mark.mongodb

#: a few milliseconds into a second, so that every instant of a test shares its whole second
T0 = datetime(2026, 3, 1, 12, 0, 0, 1000, tzinfo=UTC)
#: the order of a stream's statuses in time: a subscriber told of a move to an earlier one was told wrong
FORWARD = [Status.DRAFT, Status.SCHEDULED, Status.STARTING, Status.LIVE, Status.STOPPING, Status.ENDED]


@pytest.mark.parametrize("gap", [timedelta(microseconds=1), timedelta(milliseconds=2), timedelta(milliseconds=998)])
async def test_an_older_answer_within_the_same_second_never_overwrites_a_newer_one(
    mongo_db: Any, gap: timedelta
) -> None:
    feed = ChangeFeed(mongo_db)
    events = EventStore(mongo_db, feed=feed)
    await events.put_many(
        stored(make_event("s", Source.STREAMLOOP_STREAM, status=Status.DRAFT)), T0 - timedelta(seconds=5)
    )
    # The answer to a start, asked `gap` after a read that lands after it.
    await events.put_many(stored(make_event("s", Source.STREAMLOOP_STREAM, status=Status.STARTING)), T0 + gap)
    await events.put_many(stored(make_event("s", Source.STREAMLOOP_STREAM, status=Status.DRAFT)), T0)

    cached = (await events.get_many(Source.STREAMLOOP_STREAM, ["s"]))["s"]
    assert (cached.event.status, cached.fetched_at) == (Status.STARTING, T0 + gap)
    assert [change.event.status for change in await feed.after(0)] == [Status.DRAFT, Status.STARTING]


async def test_answers_of_one_second_land_in_the_order_they_were_asked_whatever_order_they_arrive(
    mongo_db: Any,
) -> None:
    feed = ChangeFeed(mongo_db)
    events = EventStore(mongo_db, feed=feed)
    asked = [(T0 + timedelta(milliseconds=n), status) for n, status in enumerate(FORWARD)]
    # Every order of arrival at once, from several writers.
    writers = [EventStore(mongo_db, feed=feed) for _ in range(3)]
    await asyncio.gather(
        *(
            writers[n % 3].put_many(stored(make_event("s", Source.STREAMLOOP_STREAM, status=status)), at)
            for n, (at, status) in enumerate(reversed(asked))
        )
    )
    cached = (await events.get_many(Source.STREAMLOOP_STREAM, ["s"]))["s"]
    assert (cached.event.status, cached.fetched_at) == (Status.ENDED, asked[-1][0])
    told = [change.event.status for change in await feed.after(0)]
    assert told == sorted(told, key=FORWARD.index), told


async def test_a_write_back_asked_before_a_start_never_wins_over_it(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Any
) -> None:
    """A `liveEvent` read and, 2 ms later, `startLiveEvent`, on two replicas of one database: the index
    ends with what the start answered (or later), and no subscriber hears of a move back."""
    database = "test_ordering_" + datetime.now(UTC).strftime("%H%M%S%f")
    # Every read asks the vendor: nothing cached counts as fresh.
    uncached = StreamloopSettings(base_url=sim.streamloop_url, token=SIM_TOKEN, read_timeout=2.0, fresh_for=0)
    replica = {"mongodb_database": database, "streamloop": uncached}
    async with make_gateway(**replica) as first, make_gateway(**replica) as second:
        ids = [await stream_id(first, f"Race {n}") for n in range(10)]
        baseline = await first.services.store.changes.last_seq()
        for n, id in enumerate(ids):
            reader, starter = (first, second) if n % 2 else (second, first)
            read = asyncio.ensure_future(reader.query(READ, {"id": id}))
            await asyncio.sleep(0.002)
            started = await starter.query(START, {"id": id})
            assert started["data"]["startLiveEvent"]["event"]["status"] == "STARTING", started
            await read
        for gateway in (first, second):
            await gateway.services.store.events.settled()
        store = first.services.store
        natives = [id_native(first, id) for id in ids]
        # Read past the replicas' memories of recent reads: what the index holds.
        indexed = await EventStore(store.db).get_many(Source.STREAMLOOP_STREAM, natives)
        behind = [n for n in natives if FORWARD.index(indexed[n].event.status) < FORWARD.index(Status.STARTING)]
        assert behind == [], f"the index kept an answer older than the start for {len(behind)} of {len(ids)}"
        told: dict[str, list[Status]] = {}
        for change in await store.changes.after(baseline, limit=10_000):
            told.setdefault(change.event.native_id, []).append(change.event.status)
        backwards = {n: s for n, s in told.items() if s != sorted(s, key=FORWARD.index)}
        assert backwards == {}, f"subscribers were told of a move back: {backwards}"


READ = "query($id: ID!) { liveEvent(id: $id) { status } }"
START = "mutation($id: ID!) { startLiveEvent(id: $id) { event { status } } }"


async def stream_id(gateway: Gateway, title: str) -> str:
    body = await create(gateway, create_input(title, streamloop=ALL_TARGETS["streamloop"]))
    [event] = body["data"]["createLiveEvent"]["events"]
    assert event["status"] == "SCHEDULED", body
    return str(event["id"])


def id_native(gateway: Gateway, global_id: str) -> str:
    return decode_global_id(global_id)[1]
