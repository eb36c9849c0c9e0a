"""A gateway killed mid-fan-out leaves a journal entry that the next gateway finishes: every target is
accounted for and no vendor object is made twice."""

from __future__ import annotations

import asyncio
import contextlib
import os
import socket
import sys
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from gateway.model import Source, utcnow
from gateway.store.journal import TargetRecord, TargetState
from gateway.vendors.base import CreateSpec
from tests.conftest import SIM_TOKEN, Sim
from tests.gateway_harness import Gateway
from tests.test_mutations import CREATE, OPERATION, create_input


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
    )
    for vendor, url in (("LOOP", sim.loop_url), ("STREAMLOOP", sim.streamloop_url), ("LIVEPUSH", sim.livepush_url)):
        env[f"LIVE_GATEWAY_{vendor}__BASE_URL"] = url
        env[f"LIVE_GATEWAY_{vendor}__TOKEN"] = SIM_TOKEN
        env[f"LIVE_GATEWAY_{vendor}__CONNECT_TIMEOUT"] = "1"
        env[f"LIVE_GATEWAY_{vendor}__READ_TIMEOUT"] = "2"
    return env


@contextlib.asynccontextmanager
async def gateway_process(env: dict[str, str]) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    port = free_port()
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
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
        aiohttp.ClientSession() as http,
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


@pytest.fixture
async def database(mongo_uri: str) -> AsyncIterator[Any]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    name = f"test_{uuid.uuid4().hex[:12]}"
    yield client[name]
    await client.drop_database(name)
    await client.close()


async def test_sigkill_mid_fan_out_then_restart(sim: Sim, mongo_uri: str, database: Any) -> None:
    env = gateway_env(sim, mongo_uri, database.name)
    input = create_input(title="Crash show")
    # Streamloop and Livepush are slow, so the gateway dies with their calls in flight.
    await sim.control("POST", "faults", {"streamloop": {"latency_ms": 1500}, "livepush": {"latency_ms": 1500}})

    async with gateway_process(env) as (process, url):
        request = asyncio.create_task(post(url, CREATE, {"input": input, "key": "crash-1"}))
        for _ in range(200):
            operation = await database.operations.find_one({})
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


async def abandon(gateway: Gateway, sources: list[Source], operation_id: str) -> None:
    """Journal a create whose runner died before any outcome landed (its lease already over)."""
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
        operation_id, kind="create", caller="anonymous", input=request, targets=targets, lease=timedelta(seconds=-5)
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
