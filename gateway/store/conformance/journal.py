"""Conformance of the operation journal's shapes: the insert read back, compare-and-swap writes on `_id`
and `rev`, and the reads of abandoned and unindexed operations by integer microseconds."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from gateway.model import Source
from gateway.store.conformance.registry import Check, ConformanceFailure, check, expect
from gateway.store.journal import (
    Operation,
    OperationJournal,
    OperationNotStarted,
    OperationState,
    TargetRecord,
    TargetState,
)
from gateway.store.mongo import Collection, Database

LIVE = timedelta(seconds=60)
EXPIRED = timedelta(seconds=-5)


async def _begin(journal: OperationJournal, operation_id: str, runner: str, lease: timedelta) -> Operation:
    """An operation like every other here: one caller, one title, two targets; they differ by id only."""
    return await journal.begin(
        operation_id,
        kind="create",
        caller="caller-1",
        runner=runner,
        input={"title": "Same title"},
        targets=[
            TargetRecord(Source.LIVEPUSH_STREAM, TargetState.PENDING, request={"name": "Same title"}),
            TargetRecord(Source.LOOP_SESSION, TargetState.PENDING, request={"title": "Same title"}),
        ],
        lease=lease,
    )


async def _done(journal: OperationJournal, operation_id: str, runner: str) -> Operation:
    operation = await _begin(journal, operation_id, runner, LIVE)
    expect(await journal.finish(operation), f"finish({operation_id}) by its own runner did not land")
    return operation


async def _snapshot(collection: Collection) -> dict[Any, dict[str, Any]]:
    return {doc["_id"]: doc async for doc in collection.find({})}


async def _neighbours(journal: OperationJournal) -> None:
    """Operations built to catch a wrong match, inserted before the one under test: one whose runner's
    lease ran out, one done, one done whose lease also ran out, all under the same runner name."""
    await _begin(journal, "op_0_expired", "runner-x", EXPIRED)
    await _done(journal, "op_0_done", "runner-x")
    done_expired = await _begin(journal, "op_0_done_expired", "runner-x", EXPIRED)
    await journal.finish(done_expired)


def _unchanged(before: dict[Any, dict[str, Any]], after: dict[Any, dict[str, Any]], but: str, write: str) -> None:
    for _id, doc in before.items():
        if _id != but:
            expect(after.get(_id) == doc, f"{write} changed {_id}, which fails its filter")


@check("journal.take_over", "update_one({_id, rev}) after reading the lease expired, among expired neighbours")
async def take_over(db: Database) -> None:
    journal = OperationJournal(db)
    await _neighbours(journal)
    running = await _begin(journal, "op_1", "runner-x", LIVE)
    before = await _snapshot(journal.collection)

    expect(not await journal.take_over(running, "runner-y", LIVE), "took over an operation whose lease runs")
    _unchanged(before, await _snapshot(journal.collection), "", "take_over(op_1) with a live lease")

    abandoned = await _begin(journal, "op_2", "runner-x", EXPIRED)
    before = await _snapshot(journal.collection)
    expect(await journal.take_over(abandoned, "runner-y", LIVE), "could not take over an abandoned operation")
    after = await _snapshot(journal.collection)
    _unchanged(before, after, "op_2", "take_over(op_2)")
    expect(after["op_2"]["runner"] == "runner-y", f"op_2's runner is {after['op_2']['runner']!r}, not runner-y")
    expect(not await journal.take_over(abandoned, "runner-z", LIVE), "a second take-over from one read landed")

    # Two replicas' reconcilers that read one abandoned operation at once: one takes it over.
    contested = await _begin(journal, "op_4", "runner-x", EXPIRED)
    outcomes = await asyncio.gather(*(journal.take_over(contested, r, LIVE) for r in ("runner-a", "runner-b")))
    expect(sorted(outcomes) == [False, True], f"two replicas taking over one operation: {outcomes}")
    winner = await journal.get("op_4")
    expected = "runner-a" if outcomes[0] else "runner-b"
    expect(winner is not None and winner.runner == expected, "the runner is not the replica whose take-over landed")

    # An entry written before entries had revisions or leases in microseconds: `{rev: null}` matches it.
    legacy = {k: v for k, v in before["op_2"].items() if k not in ("rev", "write_token", "lease_until_us")}
    await journal.collection.insert_one({**legacy, "_id": "op_3_legacy", "runner": "runner-x"})
    found = [operation for operation in await journal.abandoned() if operation.id == "op_3_legacy"]
    expect(len(found) == 1 and found[0].rev is None, f"abandoned() read the entry without a revision as {found}")
    expect(await journal.take_over(found[0], "runner-y", LIVE), "could not take over an entry without a revision")
    taken = await journal.get("op_3_legacy")
    expect(taken is not None and taken.runner == "runner-y" and taken.rev == 1, f"the take-over left {taken}")


@check("journal.reopen", "update_one({_id, rev}) after reading it done or abandoned, among expired neighbours")
async def reopen(db: Database) -> None:
    journal = OperationJournal(db)
    await _neighbours(journal)
    running = await _begin(journal, "op_1", "runner-x", LIVE)
    before = await _snapshot(journal.collection)
    reopened = await journal.reopen(running, "runner-y", LIVE, [Source.LIVEPUSH_STREAM])
    after = await _snapshot(journal.collection)
    for _id, doc in after.items():
        expect(doc["runner"] == before[_id]["runner"], f"reopen(op_1) made {_id}'s runner {doc['runner']!r}")
    expect(not reopened, "reopened an operation that is running under a live lease")
    _unchanged(before, after, "", "reopen(op_1) of a running operation")

    done = await _done(journal, "op_2", "runner-x")
    seen = await journal.get("op_2")
    expect(seen is not None and seen.state is OperationState.DONE, "get(op_2) did not read it done")
    assert seen is not None
    before = await _snapshot(journal.collection)
    expect(await journal.reopen(seen, "runner-y", LIVE, [Source.LIVEPUSH_STREAM]), "could not reopen op_2")
    after = await _snapshot(journal.collection)
    _unchanged(before, after, "op_2", "reopen(op_2)")
    target = after["op_2"]["targets"][Source.LIVEPUSH_STREAM.value]
    expect(after["op_2"]["state"] == "RUNNING" and target["state"] == "PENDING", "reopen(op_2) did not land whole")
    expect(not await journal.reopen(seen, "runner-z", LIVE, []), "a second reopen from one read landed")
    expect(not await journal.finish(done), "the runner it was reopened from could still finish it")


@check("journal.record", "update_one({_id, rev}) $set targets.<SOURCE>, concurrent targets, fenced by runner")
async def record(db: Database) -> None:
    journal = OperationJournal(db)
    await _neighbours(journal)
    operation = await _begin(journal, "op_1", "runner-x", LIVE)
    before = await _snapshot(journal.collection)
    outcomes = await asyncio.gather(
        *(
            journal.record(operation, TargetRecord(source, TargetState.SUCCEEDED, native_id=f"{source.value}-1"))
            for source in (Source.LIVEPUSH_STREAM, Source.LOOP_SESSION)
        )
    )
    expect(all(outcomes), f"concurrent outcomes of one runner did not both land: {outcomes}")
    after = await _snapshot(journal.collection)
    _unchanged(before, after, "op_1", "record(op_1)")
    ids = {source: target["native_id"] for source, target in after["op_1"]["targets"].items()}
    expect(
        ids == {"LIVEPUSH_STREAM": "LIVEPUSH_STREAM-1", "LOOP_SESSION": "LOOP_SESSION-1"},
        f"one outcome overwrote the other: {ids}",
    )
    expect(await journal.finish(operation), "its runner could not finish op_1")

    abandoned = await _begin(journal, "op_2", "runner-x", EXPIRED)
    expect(await journal.take_over(abandoned, "runner-y", LIVE), "could not take over op_2")
    stale = TargetRecord(Source.LIVEPUSH_STREAM, TargetState.FAILED)
    expect(not await journal.record(abandoned, stale), "a runner that lost op_2 recorded an outcome")
    expect(not await journal.finish(abandoned), "a runner that lost op_2 finished it")


@check("journal.abandoned", "find({state, lease_until_us <= now}) with leases within a second of now")
async def abandoned(db: Database) -> None:
    journal = OperationJournal(db)
    await _begin(journal, "op_expired_long_ago", "runner-x", timedelta(seconds=-2))
    await _begin(journal, "op_expired_just_now", "runner-x", timedelta(milliseconds=-150))
    await _begin(journal, "op_expires_soon", "runner-x", timedelta(milliseconds=400))
    await _begin(journal, "op_expires_later", "runner-x", timedelta(seconds=2))
    done = await _begin(journal, "op_done_expired", "runner-x", timedelta(milliseconds=-150))
    await journal.finish(done)
    found = sorted(operation.id for operation in await journal.abandoned())
    expect(found == ["op_expired_just_now", "op_expired_long_ago"], f"abandoned() returned {found}")


@check("journal.unindexed", "find({state, indexed: false, updated_us <= now - grace})")
async def unindexed(db: Database) -> None:
    journal = OperationJournal(db)
    old = await _done(journal, "op_done_unindexed", "runner-x")
    await _done(journal, "op_done_indexed", "runner-x")
    indexed = await journal.get("op_done_indexed")
    assert indexed is not None
    expect(await journal.mark_indexed(indexed), "mark_indexed(op_done_indexed) did not land")
    await _begin(journal, "op_running", "runner-x", EXPIRED)
    await asyncio.sleep(0.3)
    await _done(journal, "op_done_just_now", "runner-x")
    found = sorted(operation.id for operation in await journal.unindexed(timedelta(milliseconds=200)))
    expect(found == [old.id], f"unindexed() returned {found}")
    stale = await journal.get("op_done_unindexed")
    assert stale is not None
    expect(await journal.reopen(stale, "runner-y", LIVE, []), "could not reopen op_done_unindexed")
    expect(not await journal.mark_indexed(stale), "mark_indexed from a read older than a reopen landed")


@check("journal.settle", "find_one({_id}), then insert_one of a placeholder on the _id when absent")
async def settle(db: Database) -> None:
    journal = OperationJournal(db)
    await _neighbours(journal)
    existing = await _begin(journal, "op_1", "runner-x", LIVE)
    settled = await journal.settle("op_1")
    expect(settled is not None and settled.runner == existing.runner, "settle(op_1) did not find op_1")
    expect(await journal.settle("op_absent") is None, "settle(op_absent) found an operation")
    try:
        await _begin(journal, "op_absent", "runner-x", LIVE)
    except OperationNotStarted:
        pass
    else:
        raise ConformanceFailure("an insert after its placeholder landed")
    expect(await journal.get("op_absent") is None, "get() returned the placeholder as an operation")
    expect(sorted(o.id for o in await journal.abandoned()) == ["op_0_expired"], "abandoned() saw the placeholder")


@check("journal.discard", "delete_one({_id, rev}) of an entry as read, among expired neighbours")
async def discard(db: Database) -> None:
    journal = OperationJournal(db)
    await _neighbours(journal)
    seen = await _begin(journal, "op_1", "runner-x", LIVE)
    stale = await _begin(journal, "op_3", "runner-x", LIVE)
    # Written after `stale` was read: its revision moved on.
    expect(
        await journal.record(await _read(journal, "op_3"), TargetRecord(Source.LOOP_SESSION, TargetState.FAILED)),
        "setup",
    )
    before = await _snapshot(journal.collection)
    expect(await journal.discard(seen), "discard(op_1) as read did not delete it")
    expect(not await journal.discard(stale), "discard(op_3) from a read older than its last write deleted it")
    after = await _snapshot(journal.collection)
    expect(set(before) - set(after) == {"op_1"}, f"discard(op_1) deleted {sorted(set(before) - set(after))}")
    for _id, doc in after.items():
        expect(doc == before[_id], f"discard(op_1) changed {_id}")


async def _read(journal: OperationJournal, operation_id: str) -> Operation:
    operation = await journal.get(operation_id)
    if operation is None:
        raise ConformanceFailure(f"get({operation_id}) found nothing")
    return operation


CHECKS: tuple[Check, ...] = (take_over, reopen, record, abandoned, unindexed, settle, discard)
