"""Two gateway replicas (separate `live-gateway serve` processes) on one MongoDB and the simulators, tried
the hard way: SIGKILL mid-create and right after answering, the same key and concurrent retries on both
replicas, a MongoDB reply lost on the way. After each, the vendor objects counted in the simulators are
exactly those the journal records (none twice, none lost), and every acknowledged event is in
`liveEvents` within a reconcile interval."""

from __future__ import annotations

import asyncio
import contextlib
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from gateway.ids import decode_global_id
from gateway.model import Source
from gateway.simulators.state import SIM_STATE
from tests.conftest import Sim
from tests.tcp_proxy import proxy_to
from tests.test_crash_recovery import gateway_env, gateway_process, post
from tests.test_mutations import ALL_TARGETS, CREATE, create_input

pytestmark = pytest.mark.mongodb

#: how often the replicas look for abandoned operations and index what finished ones made
RECONCILE_INTERVAL = 0.5
ALL_SOURCES = {source.value for source in Source}
LIST_ALL = "query { liveEvents(first: 100) { edges { node { id source nativeId } } } }"
RETRY = "mutation($id: ID!) { retryLiveEventOperation(operationId: $id) { id state } }"


def replica_env(sim: Sim, mongo_uri: str, database: str) -> dict[str, str]:
    env = gateway_env(sim, mongo_uri, database)
    env["LIVE_GATEWAY_RECONCILE_INTERVAL"] = str(RECONCILE_INTERVAL)
    for vendor in ("LOOP", "STREAMLOOP", "LIVEPUSH"):
        # One attempt per call: an operation's lease (the longest call it can make) stays short, so a
        # dead replica's operation is taken over within seconds.
        env[f"LIVE_GATEWAY_{vendor}__RETRIES"] = "0"
        env[f"LIVE_GATEWAY_{vendor}__SLOT_WAIT"] = "0.5"
    return env


@contextlib.asynccontextmanager
async def replicas(env: dict[str, str], other_env: dict[str, str] | None = None) -> AsyncIterator[list[Any]]:
    """Two replicas at once: [(process, url), (process, url)]."""
    async with gateway_process(env) as first, gateway_process(other_env or env) as second:
        yield [first, second]


def vendor_objects(sim: Sim) -> dict[str, Counter[str]]:
    """Every object each simulated vendor holds, by source, each id with how many objects have it."""
    state = sim.app[SIM_STATE]
    return {
        Source.LOOP_CALL.value: Counter(state.loop.calls),
        Source.LOOP_SESSION.value: Counter(state.loop.sessions),
        Source.STREAMLOOP_STREAM.value: Counter(state.streamloop.streams),
        Source.LIVEPUSH_STREAM.value: Counter(state.livepush.streams),
    }


async def journal_ids(mongo_db: Any) -> dict[str, list[str]]:
    """The native id each operation target records, by source."""
    operations = [doc async for doc in mongo_db.operations.find({})]
    recorded: dict[str, list[str]] = {source: [] for source in ALL_SOURCES}
    for operation in operations:
        for source, target in operation["targets"].items():
            if target.get("native_id"):
                recorded[source].append(target["native_id"])
    return recorded


async def settle(mongo_db: Any, rounds: int = 400) -> list[dict[str, Any]]:
    """The operations once none is running (bounded: a stuck one fails the test)."""
    for _ in range(rounds):
        operations = [doc async for doc in mongo_db.operations.find({})]
        if operations and all(op["state"] == "DONE" for op in operations):
            return operations
        await asyncio.sleep(0.05)
    raise AssertionError(f"operations still running: {[(op['_id'], op['state']) for op in operations]}")


async def assert_journal_matches_vendors(sim: Sim, mongo_db: Any) -> dict[str, list[str]]:
    await settle(mongo_db)
    recorded = await journal_ids(mongo_db)
    held = vendor_objects(sim)
    for source in ALL_SOURCES:
        twice = [native for native, n in Counter(recorded[source]).items() if n > 1]
        assert twice == [], f"{source}: objects recorded by two targets: {twice}"
        assert sorted(recorded[source]) == sorted(held[source]), (
            f"{source}: the vendor holds {sorted(held[source])}, the journal says {sorted(recorded[source])}"
        )
    return recorded


async def assert_listed_within_a_reconcile_interval(url: str, recorded: dict[str, list[str]]) -> None:
    """Every event the journal records is in `liveEvents`, a reconcile interval (and a margin for a
    loaded machine) after the operations finished."""
    wanted = {(source, native) for source, natives in recorded.items() for native in natives}
    missing: set[tuple[str, str]] = set()
    for _ in range(int((RECONCILE_INTERVAL + 1.5) / 0.1)):
        body = await post(url, LIST_ALL, {})
        assert "errors" not in body, body
        listed = {(edge["node"]["source"], edge["node"]["nativeId"]) for edge in body["data"]["liveEvents"]["edges"]}
        missing = wanted - listed
        if not missing:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"acknowledged but not listed: {sorted(missing)}")


async def kill(process: Any) -> None:
    process.kill()
    await process.wait()


async def test_sigkill_mid_create_the_other_replica_finishes_it(sim: Sim, mongo_uri: str, mongo_db: Any) -> None:
    env = replica_env(sim, mongo_uri, mongo_db.name)
    # Streamloop and Livepush are slow: the replica dies with their calls in flight.
    await sim.control("POST", "faults", {"streamloop": {"latency_ms": 800}, "livepush": {"latency_ms": 800}})
    async with replicas(env) as [(doomed, doomed_url), (_, survivor_url)]:
        request = asyncio.create_task(post(doomed_url, CREATE, {"input": create_input("Killed mid-create")}))
        for _ in range(200):
            operation = await mongo_db.operations.find_one({})
            if operation and operation["targets"]["LOOP_CALL"]["state"] == "SUCCEEDED":
                break
            await asyncio.sleep(0.02)
        await kill(doomed)
        with contextlib.suppress(aiohttp.ClientError):
            await request
        assert operation is not None and operation["state"] == "RUNNING"
        await sim.control("POST", "faults", {"streamloop": {}, "livepush": {}})

        recorded = await assert_journal_matches_vendors(sim, mongo_db)
        assert {source: len(natives) for source, natives in recorded.items()} == dict.fromkeys(ALL_SOURCES, 1)
        await assert_listed_within_a_reconcile_interval(survivor_url, recorded)


async def test_sigkill_right_after_answering_loses_no_event(sim: Sim, mongo_uri: str, mongo_db: Any) -> None:
    env = replica_env(sim, mongo_uri, mongo_db.name)
    async with replicas(env) as [(doomed, doomed_url), (_, survivor_url)]:
        answers = await asyncio.gather(
            *(post(doomed_url, CREATE, {"input": create_input(f"Answered {n}")}) for n in range(4))
        )
        # Killed the moment the answers are in: whatever it meant to do after answering is lost.
        await kill(doomed)
        acknowledged = {
            (event["source"], decode_global_id(event["id"])[1])
            for answer in answers
            for event in answer["data"]["createLiveEvent"]["events"]
        }
        assert len(acknowledged) == 4 * len(ALL_SOURCES)

        recorded = await assert_journal_matches_vendors(sim, mongo_db)
        assert {(s, n) for s, natives in recorded.items() for n in natives} == acknowledged
        await assert_listed_within_a_reconcile_interval(survivor_url, recorded)


async def test_one_key_and_concurrent_retries_on_both_replicas_make_one_object_per_target(
    sim: Sim, mongo_uri: str, mongo_db: Any
) -> None:
    env = replica_env(sim, mongo_uri, mongo_db.name)
    async with replicas(env) as [(_, first), (_, second)]:
        # The same key, three times on each replica at once.
        input = create_input("One key")
        answers = await asyncio.gather(
            *(post(url, CREATE, {"input": input, "key": "same-key"}) for url in (first, second) * 3)
        )
        payloads = [answer["data"]["createLiveEvent"] for answer in answers]
        assert len({payload["operationId"] for payload in payloads}) == 1, answers
        assert sorted(payload["replayed"] for payload in payloads) == [False] + [True] * 5
        assert all({e["source"] for e in payload["events"]} == ALL_SOURCES for payload in payloads)

        # A target the vendor refused, retried on both replicas at once, twice each, after the vendor
        # is well again: one object.
        await sim.control("POST", "faults", {"livepush": {"reject_status": 422}})
        refused = await post(first, CREATE, {"input": create_input("Retried", livepush=ALL_TARGETS["livepush"])})
        operation_id = refused["data"]["createLiveEvent"]["operationId"]
        assert refused["data"]["createLiveEvent"]["failures"][0]["code"] == "VENDOR_REJECTED"
        await sim.control("POST", "faults", {"livepush": {}})
        retries = await asyncio.gather(*(post(url, RETRY, {"id": operation_id}) for url in (first, second) * 2))
        assert any("errors" not in retry for retry in retries), retries
        for retry in retries:
            for error in retry.get("errors", []):
                assert error["extensions"].get("reason") == "OPERATION_RUNNING", retries

        recorded = await assert_journal_matches_vendors(sim, mongo_db)
        assert {source: len(natives) for source, natives in recorded.items()} == {
            **dict.fromkeys(ALL_SOURCES, 1),
            Source.LIVEPUSH_STREAM.value: 2,
        }
        await assert_listed_within_a_reconcile_interval(second, recorded)


def is_journal_insert(message: bytes) -> bool:
    """An OP_MSG whose command is `insert` into `operations` (BSON: a string element named `insert`)."""
    return b"\x02insert\x00" in message and b"operations\x00" in message


async def test_a_lost_reply_to_the_journal_insert_makes_no_second_operation(
    sim: Sim, mongo_uri: str, mongo_db: Any
) -> None:
    async with proxy_to(mongo_uri) as proxy:
        env = replica_env(sim, mongo_uri, mongo_db.name)
        proxied = replica_env(sim, proxy.uri, mongo_db.name)
        async with replicas(proxied, env) as [(_, behind_proxy), (_, other)]:
            input = create_input("Lost reply")
            proxy.drop_reply_once(is_journal_insert)
            first = await post(behind_proxy, CREATE, {"input": input, "key": "lost-reply"})
            assert proxy.dropped == 1
            # The client does as told: an answer that is not a success is retried with the same key, on
            # whichever replica the balancer picks, until it is one (bounded).
            answer = first
            for attempt in range(40):
                if "errors" not in answer:
                    break
                assert answer["errors"][0]["extensions"].get("retryable") is True, answer
                await asyncio.sleep(0.1)
                answer = await post((other, behind_proxy)[attempt % 2], CREATE, {"input": input, "key": "lost-reply"})
            assert "errors" not in answer, answer
            payload = answer["data"]["createLiveEvent"]
            assert {e["source"] for e in payload["events"]} == ALL_SOURCES

            operations = await settle(mongo_db)
            assert len(operations) == 1, [op["_id"] for op in operations]
            recorded = await assert_journal_matches_vendors(sim, mongo_db)
            assert {source: len(natives) for source, natives in recorded.items()} == dict.fromkeys(ALL_SOURCES, 1)
            await assert_listed_within_a_reconcile_interval(other, recorded)
