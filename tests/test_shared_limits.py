"""Limits shared by replicas: a caller's rate and a vendor's budget of outbound requests hold for all
replicas together, counted in MongoDB; a read over the vendor's budget is never sent: it is served from
the cache marked stale, or answers RATE_LIMITED with retryAfter."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from gateway.ids import encode_global_id
from gateway.model import Source
from gateway.settings import Role
from gateway.shared_limits import SharedLimit
from gateway.store.ratelimits import BUCKETS, SharedWindows
from tests.conftest import Sim
from tests.gateway_harness import token_for
from tests.test_crash_recovery import gateway_env, gateway_process
from tests.test_read_path import requests_by_route, reset_counts, seed

ONE = "query($id: ID!) { liveEvent(id: $id) { id freshness { stale servedFrom } } }"


async def test_a_window_counts_every_replica_and_frees_up_as_buckets_leave_it(mongo_db: Any) -> None:
    windows = SharedWindows(mongo_db)
    await windows.ensure_indexes()
    replicas = [SharedLimit(windows, "10/minute"), SharedLimit(windows, "10/minute")]
    verdicts = [await replicas[n % 2].take("caller:x") for n in range(15)]
    assert [v.allowed for v in verdicts] == [True] * 10 + [False] * 5
    assert all(0 < v.retry_after <= 60 + 60 / BUCKETS for v in verdicts[10:])
    # Each use is one round trip (a lease of one); a refusal is remembered until the window can have room.
    assert sum(replica.round_trips for replica in replicas) == 12
    # Another key has its own window.
    assert (await replicas[0].take("caller:y")).allowed
    # A window later (and one bucket more), the first uses no longer count.
    later = await windows.take("caller:x", 10, 60.0, now=verdicts[0].bucket * 6.0 + 60 + 2 * 6.0)
    assert later.allowed


async def test_a_busy_key_leases_uses_and_never_goes_over(mongo_db: Any) -> None:
    windows = SharedWindows(mongo_db)
    replicas = [SharedLimit(windows, "500/minute") for _ in range(3)]
    assert replicas[0].lease == 10
    allowed = 0
    for n in range(700):
        allowed += (await replicas[n % 3].take("vendor:STREAMLOOP")).allowed
    # Leases left unused in a replica are given up, so all of them together may fall short, never over.
    assert 500 - 3 * replicas[0].lease <= allowed <= 500
    assert sum(replica.round_trips for replica in replicas) <= 500 // 10 + 3 + 3


async def post(url: str, subject: str, query: str, variables: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token_for(Role.VIEWER, subject)}"}
    async with (
        aiohttp.ClientSession(headers=headers) as http,
        http.post(f"{url}/graphql", json={"query": query, "variables": variables}) as resp,
    ):
        return resp.status, await resp.json()


@pytest.mark.mongodb
async def test_two_replicas_together_stay_within_a_vendor_budget_and_a_callers_rate(
    sim: Sim, mongo_uri: str, mongo_db: Any
) -> None:
    ids = await seed(sim, 12)
    streams = [encode_global_id(Source.STREAMLOOP_STREAM, native) for native in ids[Source.STREAMLOOP_STREAM]]
    env = gateway_env(sim, mongo_uri, mongo_db.name)
    env.update(
        LIVE_GATEWAY_STREAMLOOP__BUDGET="5/minute",
        LIVE_GATEWAY_STREAMLOOP__FRESH_FOR="0",  # every read asks the vendor
        LIVE_GATEWAY_STREAMLOOP__RETRIES="0",
        LIVE_GATEWAY_LIMITS__RATE_LIMIT="12/minute",
    )
    async with gateway_process(env) as (_, first), gateway_process(env) as (_, second):
        replicas = [first, second]
        await reset_counts(sim)
        # Eight reads of distinct streams, spread over both replicas: five reach the vendor, no more.
        answers = [await post(replicas[n % 2], "dashboard", ONE, {"id": streams[n]}) for n in range(8)]
        assert await requests_by_route(sim) == {("streamloop", "GET", "/streams/{id}"): 5}
        refused = [body for _, body in answers if "errors" in body]
        assert len(refused) == 3
        for body in refused:
            assert body["data"]["liveEvent"] is None
            error = body["errors"][0]["extensions"]
            assert error["code"] == "RATE_LIMITED" and error["vendor"] == "STREAMLOOP"
            assert 1 <= error["retryAfter"] <= 66
        # A stream read before is served from the cache, marked stale, and nothing is sent.
        _, body = await post(second, "dashboard", ONE, {"id": streams[0]})
        assert "errors" not in body and body["data"]["liveEvent"]["freshness"] == {"stale": True, "servedFrom": "CACHE"}
        assert await requests_by_route(sim) == {("streamloop", "GET", "/streams/{id}"): 5}

        # One caller's 20 requests over both replicas: 12 in the minute, whichever replica they reach.
        vendors = "{ vendors { vendor } }"
        statuses = [(await post(replicas[n % 2], "poller", vendors, {}))[0] for n in range(20)]
        assert statuses.count(200) == 12 and statuses.count(429) == 8
        # Another caller is not held back by it.
        assert (await post(first, "someone-else", vendors, {}))[0] == 200


async def test_over_the_vendor_budget_a_read_is_never_sent_nor_held_against_the_vendor(
    sim: Sim, make_gateway: Any, settings_for: Any
) -> None:
    ids = await seed(sim, 4)
    streamloop = settings_for().streamloop.model_copy(update={"budget": "2/minute", "fresh_for": 0, "retries": 0})
    async with make_gateway(streamloop=streamloop) as gw:
        await reset_counts(sim)
        streams = [encode_global_id(Source.STREAMLOOP_STREAM, n) for n in ids[Source.STREAMLOOP_STREAM]]
        bodies = await asyncio.gather(*(gw.query(ONE, {"id": stream}) for stream in streams))
        assert sum("errors" in body for body in bodies) == 2
        assert await sim.vendor_requests("streamloop") == 2
        health = await gw.query("{ vendors { vendor circuit consecutiveFailures } }")
        streamloop_health = next(v for v in health["data"]["vendors"] if v["vendor"] == "STREAMLOOP")
        assert streamloop_health == {"vendor": "STREAMLOOP", "circuit": "CLOSED", "consecutiveFailures": 0}
