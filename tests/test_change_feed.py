"""The change feed: numbered changes, and change streams only where the server has them."""

from __future__ import annotations

import asyncio
import dataclasses
import os
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from gateway.model import Event, Source, Status, utcnow
from gateway.store.changes import ChangeFeed
from gateway.store.events import EventStore

pytestmark = pytest.mark.mongodb


def event(native_id: str, status: Status = Status.SCHEDULED) -> Event:
    return Event(source=Source.LOOP_CALL, native_id=native_id, status=status, vendor_status="x", is_live=False)


async def test_changes_are_numbered_in_order_without_gaps(mongo_db: Any) -> None:
    feed = ChangeFeed(mongo_db)
    await asyncio.gather(*(feed.publish([(event(f"{n}a"), 1), (event(f"{n}b"), 1)]) for n in range(10)))
    changes = await feed.after(0)
    assert [c.seq for c in changes] == list(range(1, 21))
    assert await feed.last_seq() == 20
    assert [c.seq for c in await feed.after(15)] == [16, 17, 18, 19, 20]
    assert {c.event.native_id for c in changes} == {f"{n}{x}" for n in range(10) for x in "ab"}


async def test_change_streams_only_where_the_server_has_them(mongo_db: Any) -> None:
    feed = ChangeFeed(mongo_db)
    if "MONGODB_URI" not in os.environ:
        assert await feed.can_watch() is False  # the embedded server is no replica set: the hub polls
        return
    if not await feed.can_watch():
        pytest.skip("this MongoDB is standalone: the hub polls")
    inserts = feed.watch_inserts()
    woken = asyncio.ensure_future(anext(inserts))
    await asyncio.sleep(0.5)  # the stream is open before the insert
    await feed.publish([(event("watched"), 1)])
    await asyncio.wait_for(woken, timeout=10)
    await inserts.aclose()


async def test_a_change_is_numbered_once_whoever_tells_it(mongo_db: Any) -> None:
    replicas = [ChangeFeed(mongo_db), ChangeFeed(mongo_db)]
    moved = event("e1", Status.STARTING)
    # Both replicas tell e1's move to revision 2, twice each; revision 3, and e2's revision 2, once.
    await asyncio.gather(*(feed.publish([(moved, 2)]) for feed in replicas * 2))
    await replicas[1].publish([(moved, 2), (event("e1", Status.LIVE), 3), (event("e2"), 2)])

    changes = await replicas[0].after(0)
    assert [(c.seq, c.event.native_id, c.event.status) for c in changes] == [
        (1, "e1", Status.STARTING),
        (2, "e1", Status.LIVE),
        (3, "e2", Status.SCHEDULED),
    ]


async def test_two_replicas_seeing_one_vendor_change_publish_it_once(mongo_db: Any) -> None:
    """Each replica reads the vendor's answer and writes it back; the change is told once, 20 times over."""
    feed = ChangeFeed(mongo_db)
    replicas = [EventStore(mongo_db, feed=feed), EventStore(mongo_db, feed=feed)]
    asked = utcnow()
    events = [event(f"e{n}") for n in range(20)]
    await replicas[0].put_many(events, asked)
    first_changes = await feed.last_seq()

    for n, draft in enumerate(events):
        started = dataclasses.replace(draft, status=Status.STARTING, vendor_status="preparing")
        # Both asked the vendor within the same millisecond, after the stored answer.
        later = asked + timedelta(milliseconds=10 + n)
        await asyncio.gather(
            replicas[0].put_many([started], later), replicas[1].put_many([started], later + timedelta(microseconds=1))
        )

    told = Counter(change.event.native_id for change in await feed.after(first_changes))
    assert told == Counter({draft.native_id: 1 for draft in events})
