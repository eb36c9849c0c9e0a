"""Live updates over graphql-transport-ws: from mutations, from the simulators through the refresher, from
another gateway process, and from signed Loop webhooks."""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import orjson

from gateway.ids import decode_global_id
from gateway.model import Source
from gateway.webhooks import SIGNATURE_HEADER, sign
from tests.conftest import Sim
from tests.gateway_harness import Gateway
from tests.test_crash_recovery import gateway_env, gateway_process, post

UPDATED = "subscription($filter: LiveEventFilter) { liveEventUpdated(filter: $filter) { id source status isLive } }"
STATS = "subscription($filter: LiveEventFilter) { liveEventStatsUpdated(filter: $filter) { total liveNow } }"
CREATE = """mutation($input: CreateLiveEventInput!) {
  createLiveEvent(input: $input) { events { id nativeId source status } failures { code } }
}"""
SECRET = "webhook-secret"
_ids = itertools.count(1)


class Subscription:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def next(self) -> dict[str, Any]:
        """The data of the next update (pings answered on the way)."""
        async with asyncio.timeout(10):
            while True:
                message = await self.ws.receive_json()
                if message["type"] == "ping":
                    await self.ws.send_json({"type": "pong"})
                elif message["type"] == "next":
                    assert "errors" not in message["payload"], message
                    data: dict[str, Any] = message["payload"]["data"]
                    return data
                elif message["type"] != "pong":
                    raise AssertionError(f"unexpected message {message}")


@asynccontextmanager
async def subscribed(
    gateway: Gateway, query: str, variables: dict[str, Any] | None = None
) -> AsyncIterator[Subscription]:
    before = gateway.services.hub.subscriber_count
    async with gateway.http.ws_connect(f"{gateway.url}/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_json(
            {"id": str(next(_ids)), "type": "subscribe", "payload": {"query": query, "variables": variables or {}}}
        )
        # Changes made from here on reach this subscriber.
        async with asyncio.timeout(5):
            while gateway.services.hub.subscriber_count == before:  # noqa: ASYNC110 (another process's state)
                await asyncio.sleep(0.01)
        yield Subscription(ws)


async def create(gateway: Gateway, **targets: Any) -> dict[str, dict[str, Any]]:
    body = await gateway.query(CREATE, {"input": {"title": "Live show", "hostId": "h", "targets": targets}})
    payload = body["data"]["createLiveEvent"]
    assert not payload["failures"], payload
    return {event["source"]: event for event in payload["events"]}


async def test_a_subscriber_sees_each_change_once_and_nothing_outside_its_filter(sim: Sim, gateway: Gateway) -> None:
    events = await create(
        gateway,
        streamloop={"destinationId": "dest-1"},
        livepush={"category": "SIMULCAST"},
    )
    stream, push = events["STREAMLOOP_STREAM"]["id"], events["LIVEPUSH_STREAM"]["id"]
    async with subscribed(gateway, UPDATED, {"filter": {"sources": ["STREAMLOOP_STREAM"]}}) as updates:
        await gateway.query(f'mutation {{ deleteLiveEvent(id: "{push}") {{ deletedId }} }}')
        await gateway.query(f'mutation {{ startLiveEvent(id: "{stream}") {{ event {{ id }} }} }}')
        # The Livepush deletion came first and is not here: the first update is the stream's start.
        first = (await updates.next())["liveEventUpdated"]
        assert first == {"id": stream, "source": "STREAMLOOP_STREAM", "status": "STARTING", "isLive": True}
        await gateway.query(f'mutation {{ stopLiveEvent(id: "{stream}") {{ event {{ id }} }} }}')
        second = (await updates.next())["liveEventUpdated"]
        assert second["status"] == "STOPPING"  # one update per change: the start was not sent twice


async def test_a_change_made_in_the_simulators_reaches_a_subscriber(sim: Sim, gateway: Gateway) -> None:
    ids = await sim.control("POST", "seed", {"seed": 21, "count": 3})
    await gateway.query("{ liveEvents(first: 100) { totalCount } }")  # the index now holds the streams
    stream = next(i for i in ids["streamloop_stream"])
    async with subscribed(gateway, UPDATED, {"filter": {"statuses": ["FAILED"]}}) as updates:
        await sim.control("POST", f"streamloop/streams/{stream}/state", {"state": "failed"})
        await gateway.services.index.refresh(Source.STREAMLOOP_STREAM)  # what the background refresher does
        update = (await updates.next())["liveEventUpdated"]
    assert decode_global_id(update["id"]) == (Source.STREAMLOOP_STREAM, stream)
    assert update["status"] == "FAILED"


async def test_a_change_made_through_another_gateway_process_arrives(
    sim: Sim, gateway: Gateway, mongo_uri: str
) -> None:
    env = gateway_env(sim, mongo_uri, gateway.services.settings.mongodb_database)
    async with (
        subscribed(gateway, UPDATED, {"filter": {"sources": ["LIVEPUSH_STREAM"]}}) as updates,
        gateway_process(env) as (_, other_url),
    ):
        body = await post(
            other_url, CREATE, {"input": {"title": "Elsewhere", "targets": {"livepush": {"category": "SCHEDULE"}}}}
        )
        [made] = body["data"]["createLiveEvent"]["events"]
        update = (await updates.next())["liveEventUpdated"]
    assert update == {"id": made["id"], "source": "LIVEPUSH_STREAM", "status": "DRAFT", "isLive": False}


async def test_stats_subscription_answers_now_and_after_a_change(sim: Sim, gateway: Gateway) -> None:
    stream = (await create(gateway, streamloop={"destinationId": "d"}))["STREAMLOOP_STREAM"]["id"]
    async with subscribed(gateway, STATS, {"filter": {"sources": ["STREAMLOOP_STREAM"]}}) as counts:
        assert (await counts.next())["liveEventStatsUpdated"] == {"total": 1, "liveNow": 0}
        await gateway.query(f'mutation {{ startLiveEvent(id: "{stream}") {{ event {{ id }} }} }}')
        assert (await counts.next())["liveEventStatsUpdated"] == {"total": 1, "liveNow": 1}


def stamped(payload: dict[str, Any]) -> dict[str, Any]:
    """A delivery as Loop sends it: signed with the time it was sent."""
    return {"timestamp": int(time.time())} | payload


async def deliver(gateway: Gateway, payload: dict[str, Any], secret: str = SECRET) -> tuple[int, dict[str, Any]]:
    body = orjson.dumps(stamped(payload))
    async with gateway.http.post(
        f"{gateway.url}/webhooks/loop",
        data=body,
        headers={SIGNATURE_HEADER: sign(secret, body), "Content-Type": "application/json"},
    ) as resp:
        return resp.status, await resp.json()


async def test_signed_webhooks_update_the_event_and_bad_ones_change_nothing(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Any
) -> None:
    base = settings_for().loop
    loop = type(base).model_validate({**base.model_dump(), "webhook_secret": SECRET})
    async with make_gateway(loop=loop) as gw:
        call = (await create(gw, loopCall={}))["LOOP_CALL"]
        read = f'{{ liveEvent(id: "{call["id"]}") {{ status }} }}'
        async with subscribed(gw, UPDATED, {"filter": {"sources": ["LOOP_CALL"]}}) as updates:
            await sim.control("POST", f"loop/calls/{call['nativeId']}/session-start")
            started = {"id": "evt-1", "type": "call.session_started", "call_id": call["nativeId"]}

            assert (await deliver(gw, started, secret="wrong"))[0] == 401
            async with gw.http.post(f"{gw.url}/webhooks/loop", json=started) as unsigned:
                assert unsigned.status == 401
            assert (await gw.query(read))["data"]["liveEvent"] == {"status": "SCHEDULED"}

            assert await deliver(gw, started) == (200, {"status": "applied"})
            assert (await updates.next())["liveEventUpdated"]["status"] == "LIVE"
            assert (await gw.query(read))["data"]["liveEvent"] == {"status": "LIVE"}

            assert await deliver(gw, started) == (200, {"status": "duplicate"})
            await sim.control("POST", f"loop/calls/{call['nativeId']}/session-end")
            ended = {"id": "evt-2", "type": "call.session_ended", "call_id": call["nativeId"]}
            assert await deliver(gw, ended) == (200, {"status": "applied"})
            # The replay made no update of its own: the next one is the end.
            assert (await updates.next())["liveEventUpdated"]["status"] == "ENDED"


async def test_a_webhook_without_a_configured_secret_is_refused(gateway: Gateway) -> None:
    status, _ = await deliver(gateway, {"id": "x", "type": "call.session_started", "call_id": "c"})
    assert status == 404
