"""Conformance of the change feed's shapes: keys inserted under a unique `_id` before numbering, the
counter's `$inc`, and the read of numbers after one, among several writers at once."""

from __future__ import annotations

import asyncio

from gateway.model import Event, Source, Status
from gateway.store.changes import ChangeFeed
from gateway.store.conformance.registry import Check, check, expect
from gateway.store.mongo import Database


def _event(source: Source, native_id: str, status: Status) -> Event:
    return Event(source=source, native_id=native_id, status=status, vendor_status=status.value.lower(), is_live=False)


@check(
    "changes.publish",
    "insert_many of keys {_id: <event>@<rev>} (ordered=false), find_one_and_update($inc), find({_id > seq}).sort",
)
async def publish(db: Database) -> None:
    # Several replicas' writers at once, each telling the same changes and neighbours of them: the same
    # native id under another source, and the same event at the next revision.
    writers = [ChangeFeed(db) for _ in range(3)]
    same = [
        (_event(Source.LIVEPUSH_STREAM, "e1", Status.STARTING), 2),
        (_event(Source.LOOP_SESSION, "e1", Status.STARTING), 2),
    ]
    await asyncio.gather(*(writer.publish(same) for writer in writers))
    await asyncio.gather(
        *(writer.publish([(_event(Source.LIVEPUSH_STREAM, "e1", Status.LIVE), 3)]) for writer in writers)
    )

    changes = await writers[0].after(0)
    told = [(c.event.source.value, c.event.status.value) for c in changes]
    expect(
        sorted(told[:2]) == [("LIVEPUSH_STREAM", "STARTING"), ("LOOP_SESSION", "STARTING")]
        and told[2:] == [("LIVEPUSH_STREAM", "LIVE")],
        f"three writers telling three changes numbered {told}",
    )
    seqs = [c.seq for c in changes]
    expect(seqs == [1, 2, 3], f"the changes are numbered {seqs}")
    expect(await writers[1].last_seq() == 3, "the counter ran past the changes numbered")
    later = [c.seq for c in await writers[2].after(1)]
    expect(later == [2, 3], f"after(1) read {later}")


CHECKS: tuple[Check, ...] = (publish,)
