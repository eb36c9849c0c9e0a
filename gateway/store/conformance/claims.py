"""Conformance of the claims' shapes: an insert on a unique `_id` decides which operation an object
belongs to, and an `$in` read tells which objects other operations hold."""

from __future__ import annotations

import asyncio

from gateway.model import Source
from gateway.store.claims import Claims
from gateway.store.conformance.registry import Check, check, expect
from gateway.store.mongo import Database


@check("claims.claim", "insert_many([{_id: <SOURCE>:<native_id>}]), find({_id: {$in}}) when taken; concurrent claimers")
async def claim(db: Database) -> None:
    claims = Claims(db)
    # Neighbours: the same native id under another source, and another object of the same source.
    expect(await claims.claim(Source.LOOP_SESSION, "obj-1", "op_0"), "setup")
    expect(await claims.claim(Source.LIVEPUSH_STREAM, "obj-10", "op_0"), "setup")

    outcomes = await asyncio.gather(
        *(claims.claim(Source.LIVEPUSH_STREAM, "obj-1", operation) for operation in ("op_a", "op_b", "op_c"))
    )
    expect(sorted(outcomes) == [False, False, True], f"three operations claiming one object: {outcomes}")
    winner = ("op_a", "op_b", "op_c")[outcomes.index(True)]
    expect(await claims.claim(Source.LIVEPUSH_STREAM, "obj-1", winner), "its owner's repeated claim was refused")
    count = await claims.collection.count_documents({})
    expect(count == 3, f"{count} claims stored for three objects")


@check(
    "claims.claim_many",
    "insert_many([...], ordered=False): the free ones land, each taken one is a duplicate-key error by index",
)
async def claim_many(db: Database) -> None:
    claims = Claims(db)
    expect(await claims.claim(Source.LIVEPUSH_STREAM, "obj-1", "op_a"), "setup")
    expect(await claims.claim(Source.LIVEPUSH_STREAM, "obj-2", "op_b"), "setup")
    wanted = [(Source.LIVEPUSH_STREAM, f"obj-{n}") for n in (1, 2, 3)] + [(Source.LOOP_SESSION, "obj-2")]
    outcome = await claims.claim_many(wanted, "op_a")
    expected = {wanted[0]: True, wanted[1]: False, wanted[2]: True, wanted[3]: True}
    expect(outcome == expected, f"claims of op_a among others' and its own: {outcome}")
    owners = {doc["_id"]: doc["operation_id"] async for doc in claims.collection.find({})}
    expect(
        owners
        == {
            "LIVEPUSH_STREAM:obj-1": "op_a",
            "LIVEPUSH_STREAM:obj-2": "op_b",
            "LIVEPUSH_STREAM:obj-3": "op_a",
            "LOOP_SESSION:obj-2": "op_a",
        },
        f"claims stored: {owners}",
    )


@check("claims.held_by_others", "find({_id: {$in: [...]}}), owners compared by the reader")
async def held_by_others(db: Database) -> None:
    claims = Claims(db)
    expect(await claims.claim(Source.LIVEPUSH_STREAM, "obj-1", "op_a"), "setup")
    expect(await claims.claim(Source.LIVEPUSH_STREAM, "obj-2", "op_b"), "setup")
    expect(await claims.claim(Source.LOOP_SESSION, "obj-3", "op_b"), "setup")
    others = await claims.held_by_others(Source.LIVEPUSH_STREAM, ["obj-1", "obj-2", "obj-3", "obj-4"], "op_a")
    expect(others == {"obj-2"}, f"held by others than op_a: {sorted(others)}")


CHECKS: tuple[Check, ...] = (claim, claim_many, held_by_others)
