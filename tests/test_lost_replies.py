"""MongoDB writes whose reply is lost (the connection drops after the server applied them, or before it
got them): the outcome is read back by the document's own `_id`, never assumed. Vendor objects counted in
the simulators equal what the journal says."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from gateway.model import utcnow
from gateway.store.mongo import FORCE_DOCUMENT_REWRITE
from tests.conftest import Sim
from tests.gateway_harness import Gateway
from tests.mongo_proxy import mongo_proxy, writes_to
from tests.test_crash_recovery import vendor_objects_titled
from tests.test_mutations import ALL_TARGETS, create, create_input

pytestmark = pytest.mark.mongodb

TARGETS = {name: ALL_TARGETS[name] for name in ("loopSession", "streamloop", "livepush")}


async def operations_in_journal(gateway: Gateway) -> list[dict[str, Any]]:
    collection = gateway.services.store.journal.collection
    return [doc async for doc in collection.find({"state": {"$in": ["RUNNING", "DONE"]}})]


async def reconcile_as_if_leases_ran_out(gateway: Gateway) -> None:
    """What the reconciler does once every running operation's lease has run out."""
    collection = gateway.services.store.journal.collection
    past = utcnow() - timedelta(seconds=5)
    await collection.update_many(
        {"state": "RUNNING"}, {"$set": {"lease_until": past, "lease_until_us": 0}, **FORCE_DOCUMENT_REWRITE}
    )
    await gateway.services.operations.reconcile()


async def test_a_create_whose_journal_insert_reply_is_lost_runs_once(
    sim: Sim, make_gateway: Callable[..., Any], mongo_uri: str
) -> None:
    title = "Insert reply lost"
    async with mongo_proxy(mongo_uri) as proxy, make_gateway(mongodb_uri=proxy.uri) as gateway:
        proxy.lose_reply(writes_to("insert", "operations"))
        first = await create(gateway, create_input(title, **TARGETS), key="key-lost-reply")
        assert [command["insert"] for command in proxy.cut] == ["operations"]

        again = await create(gateway, create_input(title, **TARGETS), key="key-lost-reply")
        await reconcile_as_if_leases_ran_out(gateway)

        journal = await operations_in_journal(gateway)
        assert len(journal) == 1, [doc["_id"] for doc in journal]
        assert await vendor_objects_titled(sim, title) == {"streamloop": 1, "livepush": 1, "loop_session": 1}
        # The insert had landed: the create ran and answered it; the retry replays it.
        assert "errors" not in first, first
        assert first["data"]["createLiveEvent"]["failures"] == []
        assert again["data"]["createLiveEvent"]["operationId"] == first["data"]["createLiveEvent"]["operationId"]
        assert again["data"]["createLiveEvent"]["replayed"] is True


async def test_a_create_whose_journal_insert_never_arrived_frees_its_key(
    sim: Sim, make_gateway: Callable[..., Any], mongo_uri: str
) -> None:
    title = "Insert lost"
    async with mongo_proxy(mongo_uri) as proxy, make_gateway(mongodb_uri=proxy.uri) as gateway:
        proxy.lose_command(writes_to("insert", "operations"))
        first = await create(gateway, create_input(title, **TARGETS), key="key-lost-insert")
        # Known never to exist (its `_id` is taken by a placeholder), so no vendor was called: retry.
        assert first["errors"][0]["message"].endswith("send it again")
        assert await vendor_objects_titled(sim, title) == {"streamloop": 0, "livepush": 0, "loop_session": 0}

        again = await create(gateway, create_input(title, **TARGETS), key="key-lost-insert")
        await reconcile_as_if_leases_ran_out(gateway)

        assert again["data"]["createLiveEvent"]["replayed"] is False
        assert again["data"]["createLiveEvent"]["failures"] == []
        assert len(await operations_in_journal(gateway)) == 1
        assert await vendor_objects_titled(sim, title) == {"streamloop": 1, "livepush": 1, "loop_session": 1}


@pytest.mark.parametrize(
    ("verb", "collection"),
    [("insert", "idempotency"), ("insert", "claims"), ("update", "operations")],
    ids=["idempotency-claim", "object-claim", "journal-swap"],
)
async def test_a_create_whose_store_write_reply_is_lost_answers_once(
    sim: Sim, make_gateway: Callable[..., Any], mongo_uri: str, verb: str, collection: str
) -> None:
    """The write landed; its reply did not come back. It is read back by its `_id` (a swap by the token it
    wrote), and the create goes on as if the reply had come."""
    title = f"Reply lost: {verb} {collection}"
    async with mongo_proxy(mongo_uri) as proxy, make_gateway(mongodb_uri=proxy.uri) as gateway:
        proxy.lose_reply(writes_to(verb, collection))
        first = await create(gateway, create_input(title, **TARGETS), key=f"key-{collection}")
        again = await create(gateway, create_input(title, **TARGETS), key=f"key-{collection}")
        await reconcile_as_if_leases_ran_out(gateway)

        assert [command[verb] for command in proxy.cut] == [collection]
        assert "errors" not in first, first
        assert first["data"]["createLiveEvent"]["failures"] == []
        assert again["data"]["createLiveEvent"]["replayed"] is True
        journal = await operations_in_journal(gateway)
        assert [doc["state"] for doc in journal] == ["DONE"]
        assert await vendor_objects_titled(sim, title) == {"streamloop": 1, "livepush": 1, "loop_session": 1}


def reads_by_id(collection: str) -> Callable[[dict[str, Any]], bool]:
    return lambda command: command.get("find") == collection and isinstance(command.get("filter", {}).get("_id"), str)


async def test_a_create_without_a_key_whose_journal_entry_cannot_be_read_back_names_its_operation(
    sim: Sim, make_gateway: Callable[..., Any], mongo_uri: str
) -> None:
    """The insert landed but neither its reply nor any read-back came: the operation may still run (the
    reconciler takes it over), so the answer names it and does not invite a blind retry without a key,
    which would make a second object."""
    title = "Outcome unknown"
    async with mongo_proxy(mongo_uri) as proxy, make_gateway(mongodb_uri=proxy.uri) as gateway:
        proxy.lose_reply(writes_to("insert", "operations"), times=2)
        proxy.lose_reply(reads_by_id("operations"), times=1000)
        first = await create(gateway, create_input(title, **TARGETS))
        [error] = first["errors"]
        assert error["extensions"]["code"] == "STORE_UNAVAILABLE", error
        assert error["extensions"]["retryable"] is False, error
        operation_id = error["extensions"]["operationId"]
        assert operation_id in error["message"]

        # Once MongoDB answers, the operation runs, once: it is what the answer named.
        proxy.heal()
        await reconcile_as_if_leases_ran_out(gateway)
        journal = await operations_in_journal(gateway)
        assert [doc["_id"] for doc in journal] == [operation_id]
        assert await vendor_objects_titled(sim, title) == {"streamloop": 1, "livepush": 1, "loop_session": 1}


async def test_a_keyed_create_whose_key_claim_failed_runs_once(
    sim: Sim, make_gateway: Callable[..., Any], mongo_uri: str
) -> None:
    """The key's claim never reached MongoDB and the entry written beside it did: the answer names the
    operation and says to send it again with the key; the retry runs, and the first entry, whose key the
    retry holds, is discarded when it is found abandoned, having called no vendor."""
    title = "Key claim failed"
    targets = {"streamloop": {"quality": "Q_1080P", "destinationId": "dest-1"}, "livepush": {"category": "SIMULCAST"}}
    async with mongo_proxy(mongo_uri) as proxy, make_gateway(mongodb_uri=proxy.uri) as gateway:
        proxy.lose_command(writes_to("insert", "idempotency"), times=3)
        first = await create(gateway, create_input(title, **targets), key="claim-failed")
        proxy.heal()
        [error] = first["errors"]
        assert error["extensions"]["code"] == "STORE_UNAVAILABLE"
        assert error["extensions"]["retryable"] is True
        first_id = error["extensions"]["operationId"]
        written = await gateway.services.store.journal.get(first_id)
        assert written is not None and written.state.value == "RUNNING"
        assert await vendor_objects_titled(sim, title) == {"streamloop": 0, "livepush": 0, "loop_session": 0}

        again = (await create(gateway, create_input(title, **targets), key="claim-failed"))["data"]
        assert again["createLiveEvent"]["failures"] == []
        await reconcile_as_if_leases_ran_out(gateway)

        journal = await operations_in_journal(gateway)
        assert [doc["_id"] for doc in journal] == [again["createLiveEvent"]["operationId"]]
        assert first_id != again["createLiveEvent"]["operationId"]
        assert await vendor_objects_titled(sim, title) == {"streamloop": 1, "livepush": 1, "loop_session": 0}
