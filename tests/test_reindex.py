"""The index is made good from the journal: events that finished operations created and the index lacks
(a replica killed before its write-behind landed) are put back by the reconciler, for every source,
Loop calls (which no vendor listing returns) above all."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import pytest

from gateway.ids import decode_global_id
from gateway.model import Source
from gateway.store.journal import TargetState
from gateway.store.mongo import FORCE_DOCUMENT_REWRITE
from tests.conftest import Sim
from tests.gateway_harness import Gateway
from tests.test_crash_recovery import vendor_objects_titled
from tests.test_mutations import ALL_TARGETS, create, create_input

pytestmark = pytest.mark.mongodb

LISTED = '{ liveEvents(first: 50, filter: { titleContains: "Acknowledged" }) { totalCount edges { node { id } } } }'


async def listed(gateway: Gateway) -> set[str]:
    body = await gateway.query(LISTED)
    return {edge["node"]["id"] for edge in body["data"]["liveEvents"]["edges"]}


async def test_another_replica_puts_back_what_a_killed_replicas_creates_made(
    sim: Sim, make_gateway: Callable[..., Any]
) -> None:
    database = f"test_reindex_{uuid.uuid4().hex[:8]}"
    # Replica A answers the creates and is killed before its write-behind lands (it never does here);
    # replica B reconciles every 0.2 s.
    killed = make_gateway(mongodb_database=database, write_behind_delay=3600.0, reconciler_enabled=False)
    survivor = make_gateway(mongodb_database=database, reconcile_interval=0.2)
    async with killed as replica_a, survivor as replica_b:
        made: set[str] = set()
        for n in range(3):
            body = await create(replica_a, create_input(f"Acknowledged {n}", **ALL_TARGETS))
            assert body["data"]["createLiveEvent"]["failures"] == []
            made |= {event["id"] for event in body["data"]["createLiveEvent"]["events"]}
        assert len(made) == 12
        calls = {event_id for event_id in made if decode_global_id(event_id)[0] is Source.LOOP_CALL}
        assert len(calls) == 3

        # Within a reconcile interval or so (bounded: 50 looks 0.1 s apart).
        for _ in range(50):
            if (shown := await listed(replica_b)) >= made:
                break
            await asyncio.sleep(0.1)
        assert shown == made

        # Counted: what the vendors hold is what the journal says, once each.
        journal = replica_b.services.store.journal.collection
        succeeded = [
            (source, target["native_id"])
            async for doc in journal.find({"state": "DONE"})
            for source, target in doc["targets"].items()
            if target["state"] == TargetState.SUCCEEDED.value
        ]
        assert len(succeeded) == len(set(succeeded)) == 12
        for n in range(3):
            assert await vendor_objects_titled(sim, f"Acknowledged {n}") == {
                "streamloop": 1,
                "livepush": 1,
                "loop_session": 1,
            }
        assert await journal.count_documents({"indexed": False}) == 0


async def test_what_the_index_holds_is_not_fetched_again(sim: Sim, gateway: Gateway) -> None:
    body = await create(gateway, create_input("Acknowledged once", **ALL_TARGETS))
    assert body["data"]["createLiveEvent"]["failures"] == []
    await gateway.services.store.events.settled()
    await sim.control("POST", "reset", {"stats_only": True})
    journal = gateway.services.store.journal
    await journal.collection.update_many({}, {"$set": {"updated_us": 0}, **FORCE_DOCUMENT_REWRITE})  # done long ago

    await gateway.services.operations.reconcile()

    assert await journal.collection.count_documents({"indexed": False}) == 0
    await gateway.services.operations.reconcile()
    stats: dict[str, Any] = await sim.stats()
    assert stats["requests"] == []
    assert len(await listed(gateway)) == 4
