"""Conditional writes of the journal, leases and idempotency records among neighbour documents: each
lands on its own document or nowhere, on the server in use (the embedded one, or MONGODB_URI's)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
from pymongo import monitoring

from gateway.model import Source, utcnow
from gateway.store.idempotency import IdempotencyRecords
from gateway.store.journal import OperationJournal, TargetRecord, TargetState
from gateway.store.leases import Leases
from gateway.store.mongo import FORCE_DOCUMENT_REWRITE
from tests.conftest import CommandCounter, Sim
from tests.gateway_harness import Gateway
from tests.test_crash_recovery import vendor_objects_titled
from tests.test_mutations import create, create_input

pytestmark = pytest.mark.mongodb


async def begin(journal: OperationJournal, operation_id: str, runner: str, lease_seconds: float) -> Any:
    return await journal.begin(
        operation_id,
        kind="create",
        caller="anonymous",
        runner=runner,
        input={"title": "Same title"},
        targets=[TargetRecord(Source.LIVEPUSH_STREAM, TargetState.PENDING, request={"name": "Same title"})],
        lease=timedelta(seconds=lease_seconds),
    )


async def documents(collection: Any) -> dict[str, dict[str, Any]]:
    return {doc["_id"]: doc async for doc in collection.find({})}


async def test_reopening_a_running_operation_changes_no_other(mongo_db: Any) -> None:
    journal = OperationJournal(mongo_db)
    # Inserted first: an operation whose runner's lease ran out, which `reopen`'s filter must not reach.
    await begin(journal, "op_B", "runner-b", -5)
    running = await begin(journal, "op_A", "runner-a", 60)
    before = await documents(journal.collection)

    reopened = await journal.reopen(running, "runner-new", timedelta(seconds=30), [Source.LIVEPUSH_STREAM])

    after = await documents(journal.collection)
    assert {_id: doc["runner"] for _id, doc in after.items()} == {"op_B": "runner-b", "op_A": "runner-a"}
    assert reopened is False
    assert after == before


async def test_taking_over_an_abandoned_operation_changes_no_other(mongo_db: Any) -> None:
    journal = OperationJournal(mongo_db)
    await begin(journal, "op_B", "runner-x", -5)
    abandoned = await begin(journal, "op_A", "runner-x", -5)
    before = await documents(journal.collection)

    assert await journal.take_over(abandoned, "runner-new", timedelta(seconds=30))

    after = await documents(journal.collection)
    assert after["op_B"] == before["op_B"]
    assert after["op_A"]["runner"] == "runner-new"
    assert not await journal.take_over(abandoned, "runner-other", timedelta(seconds=30))


async def test_a_lease_is_taken_only_by_its_own_name(mongo_db: Any) -> None:
    leases = Leases(mongo_db)
    now = utcnow()
    # Inserted first: a lease `a` holds, and one that expired.
    assert await leases.acquire("refresh-streamloop", "a", 60, now=now)
    assert await leases.acquire("refresh-livepush", "b", 1, now=now - timedelta(seconds=10))
    assert await leases.acquire("refresh-loop", "b", 60, now=now)
    before = await documents(mongo_db["leases"])

    assert await leases.acquire("refresh-loop", "a", 60, now=now) is False

    after = await documents(mongo_db["leases"])
    assert {_id: doc["holder"] for _id, doc in after.items()} == {_id: doc["holder"] for _id, doc in before.items()}
    assert await leases.holder("refresh-loop", now=now) == "b"


async def test_an_idempotency_key_is_released_only_by_its_own_operation(mongo_db: Any) -> None:
    records = IdempotencyRecords(mongo_db)
    assert await records.claim("caller", "key-1", "hash", "op_1") is None
    assert await records.claim("caller", "key-2", "hash", "op_2") is None

    await records.release("caller", "key-2", "op_1")

    held = await records.claim("caller", "key-2", "hash", "op_3")
    assert held is not None and held.operation_id == "op_2"


RETRY = "mutation($id: ID!) { retryLiveEventOperation(operationId: $id) { state targets { source state } } }"


async def test_concurrent_retries_run_their_operation_once_and_touch_no_other(sim: Sim, gateway: Gateway) -> None:
    journal = gateway.services.store.journal
    neighbour = (await create(gateway, create_input("Neighbour", livepush={"category": "SIMULCAST"})))["data"]
    neighbour_id = neighbour["createLiveEvent"]["operationId"]
    # As every finished operation's is a while later: its lease ran out.
    ran_out = {"lease_until": utcnow() - timedelta(minutes=1), "lease_until_us": 0}
    await journal.collection.update_one({"_id": neighbour_id}, {"$set": ran_out, **FORCE_DOCUMENT_REWRITE})
    await sim.control("POST", "faults", {"livepush": {"error_rate": 1.0, "error_status": 500}})
    failed = (await create(gateway, create_input("Retried", livepush={"category": "SIMULCAST"})))["data"]
    assert [f["source"] for f in failed["createLiveEvent"]["failures"]] == ["LIVEPUSH_STREAM"]
    await sim.control("POST", "faults", {"livepush": {}})
    before = await journal.collection.find_one({"_id": neighbour_id})

    answers = await asyncio.gather(
        *(gateway.query(RETRY, {"id": failed["createLiveEvent"]["operationId"]}) for _ in range(4))
    )

    ran = [a for a in answers if "errors" not in a]
    refused = [a["errors"][0]["extensions"].get("reason") for a in answers if "errors" in a]
    assert ran and set(refused) <= {"OPERATION_RUNNING"}
    assert all(a["data"]["retryLiveEventOperation"]["state"] == "DONE" for a in ran)
    assert await journal.collection.find_one({"_id": neighbour_id}) == before
    assert await vendor_objects_titled(sim, "Retried") == {"streamloop": 0, "livepush": 1, "loop_session": 0}
    assert await vendor_objects_titled(sim, "Neighbour") == {"streamloop": 0, "livepush": 1, "loop_session": 0}
    await gateway.services.operations.reconcile()
    assert await vendor_objects_titled(sim, "Retried") == {"streamloop": 0, "livepush": 1, "loop_session": 0}


async def test_a_create_writes_its_journal_entry_once_per_batch_of_outcomes(make_gateway: Callable[..., Any]) -> None:
    """Four targets land at about the same time; their outcomes are swapped in one at a time, those that
    land during a swap together in the next, so no swap fails and is read and sent again: one insert,
    one swap per batch, the last of which finishes the operation, and one claim (the Livepush stream's)."""
    database = f"test_counted_{uuid.uuid4().hex[:8]}"
    journal_commands = CommandCounter(database, "operations")
    claim_commands = CommandCounter(database, "claims")
    monitoring.register(journal_commands)
    monitoring.register(claim_commands)
    async with make_gateway(mongodb_database=database, reconciler_enabled=False) as gateway:
        for n in range(3):
            journal_commands.commands.clear()
            claim_commands.commands.clear()
            body = await create(gateway, create_input(f"Counted {n}"))
            assert body["data"]["createLiveEvent"]["failures"] == []
            batches = journal_commands.commands["update"]
            assert 1 <= batches <= 4
            assert journal_commands.commands == {"insert": 1, "update": batches}
            assert claim_commands.commands == {"insert": 1}
