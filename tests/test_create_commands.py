"""What a four-target create costs in MongoDB commands, counted on each stretch of its way: before any
vendor is called, while the vendors answer, after the slowest one answered (until the answer), and after
the answer. The answer waits for the journal only: the intent before the vendors, the outcomes after."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import pytest
from pymongo import AsyncMongoClient, monitoring

from tests.conftest import Sim
from tests.gateway_harness import Gateway
from tests.mongo_proxy import mongo_proxy, writes_to
from tests.test_crash_recovery import vendor_objects_titled
from tests.test_lost_replies import operations_in_journal, reconcile_as_if_leases_ran_out
from tests.test_mutations import create, create_input

pytestmark = pytest.mark.mongodb

FAST = ("LOOP_CALL", "LOOP_SESSION", "STREAMLOOP_STREAM")


class CreateCommands(monitoring.CommandListener):
    """The commands a gateway sends to `database` on a create's behalf, by verb and collection: the change
    feed's polls and the rate limits' windows, which run whatever the requests, are left out."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.commands: Counter[tuple[str, str]] = Counter()
        #: each command's start and end, in order, by verb and collection
        self.timeline: list[tuple[str, tuple[str, str]]] = []
        self._names: dict[int, tuple[str, str]] = {}

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name != self.database:
            return
        collection = str(event.command.get(event.command_name))
        if (event.command_name, collection) == ("find", "changes") or collection == "rate_windows":
            return
        self.commands[(event.command_name, collection)] += 1
        self._names[event.request_id] = (event.command_name, collection)
        self.timeline.append(("started", (event.command_name, collection)))

    def taken(self) -> Counter[tuple[str, str]]:
        """The commands counted since the last call."""
        counted, self.commands = self.commands, Counter()
        return counted

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        if (name := self._names.pop(event.request_id, None)) is not None:
            self.timeline.append(("succeeded", name))

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def journal_entry_where(
    operations: Any, holds: Callable[[dict[str, Any]], bool], tries: int = 500
) -> dict[str, Any]:
    for _ in range(tries):
        entry = await operations.find_one({})
        if entry is not None and holds(entry):
            return dict(entry)
        await asyncio.sleep(0.01)
    raise AssertionError("the journal entry never got there")


async def test_a_four_target_create_waits_for_three_commands_besides_its_vendors(
    sim: Sim, make_gateway: Callable[..., Any], mongo_uri: str
) -> None:
    database = f"test_commands_{uuid.uuid4().hex[:8]}"
    # Made before the listener is registered, so that the test's own looks at the journal are not counted.
    looker: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    listener = CreateCommands(database)
    monitoring.register(listener)
    try:
        async with make_gateway(mongodb_database=database, reconciler_enabled=False) as gateway:
            warm = await create(gateway, create_input("Warm-up"))  # connections, indexes, first reads
            assert warm["data"]["createLiveEvent"]["failures"] == []
            await gateway.services.store.events.settled()
            await looker[database].operations.delete_many({})
            listener.taken()
            # Livepush answers well after the others (within the tests' 2 s read timeout), so that each stretch
            # can be told apart.
            latency = {"loop": {"latency_ms": 500}, "streamloop": {"latency_ms": 500}, "livepush": {"latency_ms": 1500}}
            await sim.control("POST", "faults", latency)
            answer = asyncio.create_task(create(gateway, create_input("Counted"), key="counted-1"))
            operations = looker[database].operations

            listener.timeline.clear()
            await journal_entry_where(operations, lambda _: True)
            # The intent is durable before any vendor is called: the key's claim and the journal entry,
            # sent together (one round trip: both are under way before either is answered).
            assert listener.taken() == {("insert", "idempotency"): 1, ("insert", "operations"): 1}
            assert [moment for moment, _ in listener.timeline[:2]] == ["started", "started"]

            await journal_entry_where(operations, lambda e: all(e["targets"][s]["state"] == "SUCCEEDED" for s in FAST))
            # Outcomes that land together are journaled together, one swap per write; a Loop call, a Loop
            # session or a Streamloop stream needs no claim (no lookup can take it for another's).
            meanwhile = listener.taken()
            writes = meanwhile[("update", "operations")]
            assert 1 <= writes <= 3
            assert meanwhile == {("update", "operations"): writes}

            body = await answer
            assert body["data"]["createLiveEvent"]["failures"] == [], body
            # After the slowest vendor answered, the answer waits for its Livepush stream's claim and one
            # swap that journals its outcome and finishes the operation: no read-back. The index write,
            # which is not waited for, may have begun by the time this test's client has the answer (they
            # share the event loop): it is counted with what comes after.
            last_stretch = listener.taken()
            journaled = {name: n for name, n in last_stretch.items() if name[1] in ("claims", "operations")}
            assert journaled == {("insert", "claims"): 1, ("update", "operations"): 1}
            entry = await operations.find_one({})
            assert entry is not None and entry["state"] == "DONE" and entry["indexed"] is False

            # The index takes the four events after the answer, in one bulk write (and one change-feed note).
            await gateway.services.store.events.settled()
            assert listener.taken() + (last_stretch - Counter(journaled)) == {
                ("find", "events"): 1,
                ("update", "events"): 1,
                ("insert", "change_keys"): 1,
                ("findAndModify", "counters"): 1,
                ("insert", "changes"): 1,
            }
    finally:
        await looker.close()


async def test_outcomes_whose_swap_never_arrived_are_finished_by_the_reconciler_once(
    sim: Sim, make_gateway: Callable[..., Any], mongo_uri: str
) -> None:
    """The objects were made and claimed, and no swap that journals their outcomes reached MongoDB: the
    answer reports nothing as made, the operation is not finished, and the reconciler adopts each object
    (the claims say they are this operation's) rather than making another."""
    title = "Swaps lost"
    targets = {
        "loopSession": {"brandId": "brand-1", "maxParticipants": 2, "kind": "OFFICE_HOURS"},
        "streamloop": {"quality": "Q_1080P", "destinationId": "dest-1"},
        "livepush": {"category": "SIMULCAST"},
    }
    async with mongo_proxy(mongo_uri) as proxy, make_gateway(mongodb_uri=proxy.uri) as gateway:
        proxy.lose_command(writes_to("update", "operations"), times=3)
        first = await create(gateway, create_input(title, **targets))
        payload = first["data"]["createLiveEvent"]
        assert payload["events"] == []
        assert {f["code"] for f in payload["failures"]} == {"PENDING"}
        proxy.heal()
        [entry] = await operations_in_journal(gateway)
        assert entry["state"] == "RUNNING"
        assert {t["state"] for t in entry["targets"].values()} == {"PENDING"}

        await reconcile_as_if_leases_ran_out(gateway)

        [entry] = await operations_in_journal(gateway)
        assert entry["state"] == "DONE"
        assert {s: t["state"] for s, t in entry["targets"].items()} == dict.fromkeys(
            ("LOOP_SESSION", "STREAMLOOP_STREAM", "LIVEPUSH_STREAM"), "SUCCEEDED"
        )
        assert await vendor_objects_titled(sim, title) == {"streamloop": 1, "livepush": 1, "loop_session": 1}


async def test_a_create_answered_is_finished_in_the_journal(sim: Sim, gateway: Gateway) -> None:
    """The swap that carries the last outcome also finishes the operation: no entry is left running."""
    for n in range(3):
        body = await create(gateway, create_input(f"Finished {n}"))
        assert body["data"]["createLiveEvent"]["failures"] == []
    journal = [doc async for doc in gateway.services.store.journal.collection.find({})]
    assert [doc["state"] for doc in journal] == ["DONE"] * 3
    assert all(target["state"] == "SUCCEEDED" for doc in journal for target in doc["targets"].values())


async def test_a_create_cancelled_while_its_entry_is_written_takes_the_write_with_it(gateway: Gateway) -> None:
    """Cancelled at the step that lets the journal insert go out before the vendor requests are built, a
    create does not leave the insert running with nobody to await it: it is cancelled with the create."""
    write: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    building = asyncio.create_task(gateway.services.operations._build_while(write, "op-cancelled", {}))
    await asyncio.sleep(0)  # the task is at its step now
    building.cancel()
    with pytest.raises(asyncio.CancelledError):
        await building
    assert write.cancelled()
