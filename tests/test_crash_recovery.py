"""A gateway killed mid-fan-out leaves a journal entry that the next gateway finishes: every target is
accounted for and no vendor object is made twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from typing import Any

import aiohttp

from gateway.model import Source, utcnow
from gateway.operations import CreateRequest
from gateway.settings import Role
from gateway.store.idempotency import record_id
from gateway.store.journal import TargetRecord, TargetState
from gateway.vendors.base import CreateSpec
from tests.conftest import SIM_TOKEN, Sim
from tests.gateway_harness import JWT_SECRET, Gateway, auth_header
from tests.test_mutations import CREATE, OPERATION, create, create_input


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def gateway_env(sim: Sim, mongo_uri: str, database: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_GATEWAY_")}
    env.update(
        LIVE_GATEWAY_MONGODB_URI=mongo_uri,
        LIVE_GATEWAY_MONGODB_DATABASE=database,
        LIVE_GATEWAY_REFRESHER_ENABLED="false",
        LIVE_GATEWAY_RECONCILE_INTERVAL="0.5",
        LIVE_GATEWAY_AUTH__JWT_SECRET=JWT_SECRET,
    )
    for vendor, url in (("LOOP", sim.loop_url), ("STREAMLOOP", sim.streamloop_url), ("LIVEPUSH", sim.livepush_url)):
        env[f"LIVE_GATEWAY_{vendor}__BASE_URL"] = url
        env[f"LIVE_GATEWAY_{vendor}__TOKEN"] = SIM_TOKEN
        env[f"LIVE_GATEWAY_{vendor}__CONNECT_TIMEOUT"] = "1"
        env[f"LIVE_GATEWAY_{vendor}__READ_TIMEOUT"] = "2"
    return env


@contextlib.asynccontextmanager
async def gateway_process(env: dict[str, str], *args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), *args,
        env=env, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(200):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{url}/healthz") as resp:
                        if resp.status == 200:
                            break
                assert process.returncode is None, "the gateway exited on start"
                await asyncio.sleep(0.05)
        yield process, url
    finally:
        if process.returncode is None:
            process.terminate()
            await process.wait()


async def post(url: str, query: str, variables: dict[str, Any]) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(headers=auth_header(Role.ADMIN)) as http,
        http.post(f"{url}/graphql", json={"query": query, "variables": variables}) as resp,
    ):
        body: dict[str, Any] = await resp.json()
        return body


async def vendor_objects_titled(sim: Sim, title: str) -> dict[str, int]:
    """How many objects each listable vendor holds with this title."""
    headers = {"Authorization": f"Bearer {SIM_TOKEN}"}
    async with sim.http.get(f"{sim.streamloop_url}/streams?limit=100", headers=headers) as resp:
        streams = (await resp.json())["data"]
    async with sim.http.get(f"{sim.livepush_url}/streams/mine", headers=headers) as resp:
        pushes = await resp.json()
    async with sim.http.get(f"{sim.loop_url}/v1/live/sessions?limit=100", headers=headers) as resp:
        sessions = (await resp.json())["sessions"]
    return {
        "streamloop": sum(s["name"] == title for s in streams),
        "livepush": sum(p["metadata"]["name"] == title for p in pushes),
        "loop_session": sum(s["title"] == title for s in sessions),
    }


async def test_sigkill_mid_fan_out_then_restart(sim: Sim, mongo_uri: str, mongo_db: Any) -> None:
    env = gateway_env(sim, mongo_uri, mongo_db.name)
    input = create_input(title="Crash show")
    # Streamloop and Livepush are slow, so the gateway dies with their calls in flight.
    await sim.control("POST", "faults", {"streamloop": {"latency_ms": 1500}, "livepush": {"latency_ms": 1500}})

    async with gateway_process(env) as (process, url):
        request = asyncio.create_task(post(url, CREATE, {"input": input, "key": "crash-1"}))
        for _ in range(200):
            operation = await mongo_db.operations.find_one({})
            if operation and all(
                operation["targets"][s]["state"] == "SUCCEEDED" for s in ("LOOP_CALL", "LOOP_SESSION")
            ):
                break
            await asyncio.sleep(0.02)
        assert operation is not None
        process.kill()
        await process.wait()
        with contextlib.suppress(aiohttp.ClientError):
            await request
    assert operation["state"] == "RUNNING"
    assert operation["targets"]["STREAMLOOP_STREAM"]["state"] == "PENDING"
    assert operation["targets"]["LIVEPUSH_STREAM"]["state"] == "PENDING"
    await sim.control("POST", "faults", {"streamloop": {}, "livepush": {}})

    async with gateway_process(env) as (_, url):
        # The client's retry with its key waits for (or drives) the takeover, then answers in full.
        replay = (await post(url, CREATE, {"input": input, "key": "crash-1"}))["data"]["createLiveEvent"]
        assert replay["replayed"] is True
        assert replay["failures"] == []
        assert {e["source"] for e in replay["events"]} == {s.value for s in Source}
        journal = (await post(url, OPERATION, {"id": replay["operationId"]}))["data"]["liveEventOperation"]
    assert journal["state"] == "DONE"
    assert {t["source"]: t["state"] for t in journal["targets"]} == dict.fromkeys(
        ("LOOP_CALL", "LOOP_SESSION", "STREAMLOOP_STREAM", "LIVEPUSH_STREAM"), "SUCCEEDED"
    )
    assert await vendor_objects_titled(sim, "Crash show") == {"streamloop": 1, "livepush": 1, "loop_session": 1}


async def abandon(
    gateway: Gateway, sources: list[Source], operation_id: str, key: tuple[str, str] | None = None
) -> None:
    """Journal a create whose runner died before any outcome landed (its lease already over); with `key`,
    one whose entry was written beside the claim of that idempotency record and request fingerprint."""
    request = create_input(title="Half made")
    services = gateway.services
    targets = []
    for source in sources:
        spec = CreateSpec(
            title=request["title"],
            host_id="host-1",
            scheduled_start=utcnow() + timedelta(days=3),
            options={
                Source.LOOP_CALL: {"host_user_id": "host-1"},
                Source.LOOP_SESSION: {"brand_id": "brand-1", "max_participants": 5},
                Source.LIVEPUSH_STREAM: {"category": "simulcast"},
                Source.STREAMLOOP_STREAM: {"destination_id": "d"},
            }[source],
        )
        body = services.adapters[source].prepare_create(spec, operation_id)
        targets.append(TargetRecord(source, TargetState.PENDING, request=body))
    await services.store.journal.begin(
        operation_id,
        kind="create",
        caller="anonymous",
        runner="a-runner-that-died",
        input=request,
        targets=targets,
        lease=timedelta(seconds=-5),
        key=key,
    )


async def test_reconcile_adopts_what_an_interrupted_create_made(sim: Sim, gateway: Gateway) -> None:
    operation_id = "op_interrupted"
    sources = [Source.LOOP_SESSION, Source.LIVEPUSH_STREAM, Source.STREAMLOOP_STREAM, Source.LOOP_CALL]
    await abandon(gateway, sources, operation_id)
    operation = await gateway.services.store.journal.get(operation_id)
    assert operation is not None
    # The crashed runner's session and Livepush stream did reach their vendors.
    services = gateway.services
    for source in (Source.LOOP_SESSION, Source.LIVEPUSH_STREAM):
        await services.adapters[source].create(operation.targets[source].request, idempotency_key="x")
    await sim.control("POST", "reset", {"stats_only": True})

    assert await services.operations.reconcile() == 1
    done = await services.store.journal.get(operation_id)
    assert done is not None
    states = {s: (t.state, t.failure.code if t.failure else None) for s, t in done.targets.items()}
    assert states == {
        Source.LOOP_SESSION: (TargetState.SUCCEEDED, None),
        Source.LIVEPUSH_STREAM: (TargetState.SUCCEEDED, None),
        Source.STREAMLOOP_STREAM: (TargetState.SUCCEEDED, None),
        # Loop gives no way to find a call by the operation that made it: said, not guessed.
        Source.LOOP_CALL: (TargetState.FAILED, "OUTCOME_UNKNOWN"),
    }
    assert await vendor_objects_titled(sim, "Half made") == {"streamloop": 1, "livepush": 1, "loop_session": 1}
    stats = await sim.stats()
    creates = [r for r in stats["requests"] if r["method"] == "POST"]
    assert [(r["vendor"], r["route"]) for r in creates] == [("streamloop", "/streams")]
    assert await services.operations.reconcile() == 0


async def test_reconcile_sends_what_never_landed(sim: Sim, gateway: Gateway) -> None:
    await abandon(gateway, [Source.LOOP_SESSION, Source.LIVEPUSH_STREAM], "op_never_sent")
    assert await gateway.services.operations.reconcile() == 1
    assert await vendor_objects_titled(sim, "Half made") == {"streamloop": 0, "livepush": 1, "loop_session": 1}


async def test_a_takeover_from_an_outdated_look_does_nothing(sim: Sim, gateway: Gateway) -> None:
    await abandon(gateway, [Source.LIVEPUSH_STREAM], "op_raced")
    journal, operations = gateway.services.store.journal, gateway.services.operations
    seen = await journal.get("op_raced")
    assert seen is not None
    first = await operations.take_over(seen)
    assert first is not None and first.state.value == "DONE"
    # A second replica that read the operation before the first took it over must not run it again,
    # nor overwrite what the first recorded.
    assert await operations.take_over(seen) is None
    after = await journal.get("op_raced")
    assert (
        after is not None
        and after.targets[Source.LIVEPUSH_STREAM].native_id == first.targets[Source.LIVEPUSH_STREAM].native_id
    )
    assert await vendor_objects_titled(sim, "Half made") == {"streamloop": 0, "livepush": 1, "loop_session": 0}


async def test_a_runner_that_lost_its_operation_cannot_write_to_it(gateway: Gateway) -> None:
    await abandon(gateway, [Source.LIVEPUSH_STREAM], "op_fenced")
    journal = gateway.services.store.journal
    seen = await journal.get("op_fenced")
    assert seen is not None
    assert await journal.take_over(seen, "new-runner", timedelta(seconds=30))
    stale = seen.targets[Source.LIVEPUSH_STREAM]
    stale.state = TargetState.FAILED
    # The dead runner still holds the operation as it last read it.
    assert await journal.record(seen, stale) is False
    assert await journal.finish(seen) is False
    now = await journal.get("op_fenced")
    assert now is not None and now.targets[Source.LIVEPUSH_STREAM].state is TargetState.PENDING


async def test_retry_runs_the_pending_targets_of_a_dead_runner(sim: Sim, gateway: Gateway) -> None:
    await abandon(gateway, [Source.LIVEPUSH_STREAM, Source.LOOP_SESSION], "op_half")
    body = await gateway.query(
        'mutation { retryLiveEventOperation(operationId: "op_half") { state targets { source state } } }'
    )
    operation = body["data"]["retryLiveEventOperation"]
    assert operation["state"] == "DONE"
    assert {t["source"]: t["state"] for t in operation["targets"]} == {
        "LIVEPUSH_STREAM": "SUCCEEDED",
        "LOOP_SESSION": "SUCCEEDED",
    }
    assert await vendor_objects_titled(sim, "Half made") == {"streamloop": 0, "livepush": 1, "loop_session": 1}


async def test_retry_never_re_sends_a_loop_call_that_may_exist(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Any
) -> None:
    quick = settings_for().loop.model_copy(update={"read_timeout": 0.3, "connect_timeout": 0.3})
    async with make_gateway(loop=quick) as gw:
        # The call is sent and never answered: it may exist at Loop.
        await sim.control("POST", "faults", {"loop": {"hang": True}})
        payload = await create(gw, create_input(loopCall={"hostUserId": "h"}, livepush={"category": "SIMULCAST"}))
        [failure] = payload["data"]["createLiveEvent"]["failures"]
        assert failure["source"] == "LOOP_CALL" and failure["code"] == "VENDOR_UNAVAILABLE"
        await sim.control("POST", "faults", {"loop": {}})
        await sim.control("POST", "reset", {"stats_only": True})
        operation_id = payload["data"]["createLiveEvent"]["operationId"]
        body = await gw.query(
            f'mutation {{ retryLiveEventOperation(operationId: "{operation_id}") '
            "{ targets { source state failure { code retryable } } } }"
        )
    targets = {t["source"]: t for t in body["data"]["retryLiveEventOperation"]["targets"]}
    assert targets["LOOP_CALL"]["state"] == "FAILED"
    assert targets["LOOP_CALL"]["failure"] == {"code": "OUTCOME_UNKNOWN", "retryable": False}
    assert await sim.vendor_requests("loop") == 0


async def test_retry_re_sends_a_loop_call_the_vendor_refused(sim: Sim, gateway: Gateway) -> None:
    await sim.control("POST", "faults", {"loop": {"provider": "failing"}})
    payload = (await create(gateway, create_input(loopCall={"hostUserId": "h"})))["data"]["createLiveEvent"]
    assert payload["failures"][0]["code"] == "VENDOR_UNAVAILABLE"
    await sim.control("POST", "faults", {"loop": {}})
    body = await gateway.query(
        f'mutation {{ retryLiveEventOperation(operationId: "{payload["operationId"]}") {{ targets {{ state }} }} }}'
    )
    assert body["data"]["retryLiveEventOperation"]["targets"] == [{"state": "SUCCEEDED"}]


def to_create_request_from(input: dict[str, Any]) -> CreateRequest:
    """The request the gateway makes of this GraphQL input (a Livepush target only)."""
    return CreateRequest(
        title=input["title"],
        scheduled_start=datetime.fromisoformat(input["scheduledStart"]),
        scheduled_end=datetime.fromisoformat(input["scheduledEnd"]),
        host_id=input["hostId"],
        metadata=input["metadata"],
        targets={Source.LIVEPUSH_STREAM: {"category": input["targets"]["livepush"]["category"].lower()}},
    )


async def test_a_key_whose_first_request_never_started_is_freed(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Any
) -> None:
    quick = settings_for().livepush.model_copy(update={"read_timeout": 0.2, "connect_timeout": 0.2})
    input = create_input(livepush={"category": "SIMULCAST"})
    async with make_gateway(livepush=quick) as gw:
        services = gw.services
        request = to_create_request_from(input)
        # The first request claimed the key and died before its journal entry: no vendor was called.
        await services.store.idempotency.claim("sub:tester", "orphan-key", request.fingerprint(), "op_never_begun")
        first = await create(gw, input, key="orphan-key")
        assert first["errors"][0]["extensions"] == {"code": "INTERNAL", "retryable": True}
        again = (await create(gw, input, key="orphan-key"))["data"]["createLiveEvent"]
    assert again["replayed"] is False and not again["failures"]
    assert await vendor_objects_titled(sim, "Launch show") == {"streamloop": 0, "livepush": 1, "loop_session": 0}


async def test_an_entry_that_cannot_be_read_holds_up_no_other_takeover(sim: Sim, gateway: Gateway) -> None:
    journal = gateway.services.store.journal
    # Found first: a running entry whose lease ran out and whose target lacks what a target has.
    broken = {"_id": "op_0_broken", "rev": 1, "state": "RUNNING", "lease_until_us": 0, "runner": "gone"}
    await journal.collection.insert_one({**broken, "targets": {"LIVEPUSH_STREAM": {"state": "PENDING"}}})
    await abandon(gateway, [Source.LIVEPUSH_STREAM], "op_1_abandoned")

    assert await gateway.services.operations.reconcile() == 1

    done = await journal.get("op_1_abandoned")
    assert done is not None and done.state.value == "DONE"
    assert await vendor_objects_titled(sim, "Half made") == {"streamloop": 0, "livepush": 1, "loop_session": 0}


async def test_an_abandoned_entry_whose_key_another_operation_holds_never_runs(sim: Sim, gateway: Gateway) -> None:
    """A create's entry is written beside its key's claim; the claim lost to another request with the key,
    and the runner died before discarding the entry: taking it over discards it, and calls no vendor."""
    services = gateway.services
    record = record_id("sub:tester", "taken-key")
    assert await services.store.idempotency.claim_record(record, "fingerprint", "op_the_keys_own") is None
    await abandon(
        gateway, [Source.LIVEPUSH_STREAM, Source.STREAMLOOP_STREAM], "op_lost_its_key", (record, "fingerprint")
    )
    await sim.control("POST", "reset", {"stats_only": True})

    assert await services.operations.reconcile() == 0

    assert await services.store.journal.get("op_lost_its_key") is None
    assert await services.store.journal.collection.count_documents({"_id": "op_lost_its_key"}) == 0
    assert await sim.vendor_requests() == 0
    assert await vendor_objects_titled(sim, "Half made") == {"streamloop": 0, "livepush": 0, "loop_session": 0}


async def test_an_abandoned_entry_whose_key_claim_never_landed_binds_it_and_runs(sim: Sim, gateway: Gateway) -> None:
    """The entry landed and its key's claim did not, and the runner died: taking it over binds the key to
    it first, so the client's retry with the key replays it rather than starting another create."""
    services = gateway.services
    input = create_input(title="Half made", livepush={"category": "SIMULCAST"})
    key = (record_id("sub:tester", "unbound-key"), to_create_request_from(input).fingerprint())
    await abandon(gateway, [Source.LIVEPUSH_STREAM], "op_unbound", key)

    assert await services.operations.reconcile() == 1

    replay = (await create(gateway, input, key="unbound-key"))["data"]["createLiveEvent"]
    assert replay["replayed"] is True
    assert replay["operationId"] == "op_unbound"
    assert replay["failures"] == []
    assert await vendor_objects_titled(sim, "Half made") == {"streamloop": 0, "livepush": 1, "loop_session": 0}
