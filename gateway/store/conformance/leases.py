"""Conformance of the leases' and idempotency records' shapes: read by `_id`, decide, then
compare-and-swap on `_id` and `rev`; expiry in integer microseconds."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from gateway.model import utcnow
from gateway.store.conformance.registry import Check, check, expect
from gateway.store.idempotency import IdempotencyRecords, record_id
from gateway.store.leases import Leases
from gateway.store.mongo import Database


@check("leases.acquire", "find_one({_id}), then insert_one or update_one({_id, rev}), among expired neighbours")
async def acquire(db: Database) -> None:
    leases = Leases(db)
    now = utcnow()
    # Neighbours: an expired lease of another holder, and a live one of the holder under test.
    expect(await leases.acquire("lease_0_expired", "holder-b", 1, now=now - timedelta(seconds=5)), "setup")
    expect(await leases.acquire("lease_0_live", "holder-a", 60, now=now), "setup")
    expect(await leases.acquire("lease_1", "holder-b", 0.4, now=now), "holder-b could not take a free lease")

    expect(not await leases.acquire("lease_1", "holder-a", 60, now=now), "took a lease another holder has")
    expect(await leases.holder("lease_0_expired", now=now) is None, "an expired neighbour has a holder")
    expect(await leases.holder("lease_0_live", now=now) == "holder-a", "a neighbour's holder changed")
    expect(await leases.holder("lease_1", now=now) == "holder-b", "the lease's holder changed")

    # 400 ms on, in the same second: expired to the microsecond.
    later = now + timedelta(milliseconds=400)
    outcomes = await asyncio.gather(*(leases.acquire("lease_1", h, 60, now=later) for h in ("holder-a", "holder-c")))
    expect(sorted(outcomes) == [False, True], f"contenders for an expired lease: {outcomes}")
    winner = "holder-a" if outcomes[0] else "holder-c"
    expect(await leases.holder("lease_1", now=later) == winner, "the holder is not the contender that won")
    expect(await leases.holder("lease_0_expired", now=later) is None, "taking lease_1 took an expired neighbour")
    expect(await leases.acquire("lease_1", winner, 60, now=later), "its holder could not renew the lease")

    # A lease written before leases had revisions: `{rev: null}` matches it.
    await db["leases"].insert_one({"_id": "lease_2_legacy", "holder": "holder-b", "expires_at": now})
    await db["leases"].insert_one({"_id": "lease_3_legacy", "holder": "holder-b", "expires_at": later + timedelta(1)})
    expect(not await leases.acquire("lease_3_legacy", "holder-a", 60, now=later), "took a live lease without rev")
    expect(await leases.acquire("lease_2_legacy", "holder-a", 60, now=later), "could not take a lease without rev")
    expect(await leases.holder("lease_2_legacy", now=later) == "holder-a", "the lease without rev was not taken")


@check("leases.release", "find_one({_id}), then delete_one({_id, rev})")
async def release(db: Database) -> None:
    leases = Leases(db)
    expect(await leases.acquire("lease_0", "holder-a", 60), "setup")
    expect(await leases.acquire("lease_1", "holder-a", 60), "setup")
    expect(not await leases.release("lease_1", "holder-b"), "released a lease another holder has")
    expect(await leases.release("lease_1", "holder-a"), "its holder could not release the lease")
    expect(await leases.holder("lease_0") == "holder-a", "releasing lease_1 released a neighbour")
    expect(await leases.holder("lease_1") is None, "the released lease still has a holder")


@check("idempotency.claim", "insert_one; find_one({_id}); update_one({_id, rev}) of an expired record")
async def claim(db: Database) -> None:
    records = IdempotencyRecords(db)
    expect(await records.claim("caller-1", "key-0", "hash-0", "op_0") is None, "setup")
    expect(await records.claim("caller-2", "key-1", "hash-0", "op_1") is None, "setup")
    held = await records.claim("caller-1", "key-1", "hash-1", "op_2")
    expect(held is None, "a key of the same name held by another caller bound this one")
    held = await records.claim("caller-1", "key-1", "hash-1", "op_3")
    expect(held is not None and held.operation_id == "op_2", f"a repeat found {held}, not op_2's record")

    # Two records past their retention, one second apart; two requests race for one of them.
    past = int((utcnow() - timedelta(seconds=1)).timestamp() * 1_000_000)
    for key, at in (("key-old", past), ("key-older", past - 1_000_000)):
        await records.collection.update_one(
            {"_id": record_id("caller-1", key)},
            {"$set": {"operation_id": f"op_{key}", "request_hash": "h", "created_at": utcnow(), "expires_us": at}},
            upsert=True,
        )
        await records.collection.update_one({"_id": record_id("caller-1", key)}, {"$set": {"rev": 1}})
    outcomes = await asyncio.gather(
        records.claim("caller-1", "key-old", "hash-a", "op_a"), records.claim("caller-1", "key-old", "hash-b", "op_b")
    )
    winners = [outcome is None for outcome in outcomes]
    expect(sorted(winners) == [False, True], f"two claims of an expired record: {outcomes}")
    older = await records.collection.find_one({"_id": record_id("caller-1", "key-older")})
    expect(older is not None and older["operation_id"] == "op_key-older", "a neighbour's expired record changed")


@check("idempotency.release", "find_one({_id}), then delete_one({_id, rev}) when it names the operation")
async def release_key(db: Database) -> None:
    records = IdempotencyRecords(db)
    expect(await records.claim("caller-1", "key-0", "hash", "op_0") is None, "setup")
    expect(await records.claim("caller-1", "key-1", "hash", "op_1") is None, "setup")
    expect(not await records.release("caller-1", "key-1", "op_0"), "released a key bound to another operation")
    expect(await records.release("caller-1", "key-1", "op_1"), "could not release the key of op_1")
    expect(await records.claim("caller-1", "key-1", "hash", "op_2") is None, "the released key is still bound")
    held = await records.claim("caller-1", "key-0", "other", "op_3")
    expect(held is not None and held.operation_id == "op_0", "releasing key-1 released a neighbour")


CHECKS: tuple[Check, ...] = (acquire, release, claim, release_key)
