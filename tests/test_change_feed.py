"""The change feed: numbered changes, and change streams only where the server has them."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest

from gateway.model import Event, Source, Status
from gateway.store.changes import ChangeFeed

pytestmark = pytest.mark.mongodb


def event(native_id: str, status: Status = Status.SCHEDULED) -> Event:
    return Event(source=Source.LOOP_CALL, native_id=native_id, status=status, vendor_status="x", is_live=False)


async def test_changes_are_numbered_in_order_without_gaps(mongo_db: Any) -> None:
    feed = ChangeFeed(mongo_db)
    await asyncio.gather(*(feed.publish([event(f"{n}a"), event(f"{n}b")]) for n in range(10)))
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
    await feed.publish([event("watched")])
    await asyncio.wait_for(woken, timeout=10)
    await inserts.aclose()
