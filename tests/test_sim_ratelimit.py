"""Streamloop's rate limit, with a quota small enough to spend in a test."""

from __future__ import annotations

import pytest
from test_sim_support import LIVEPUSH, LOOP, STREAMLOOP, send

from gateway.simulators import SimulatorConfig
from tests.conftest import SIM_TOKEN, Sim

LIMIT = 3
STREAMS = f"{STREAMLOOP}/streams"


@pytest.fixture
def sim_config() -> SimulatorConfig:
    return SimulatorConfig(token=SIM_TOKEN, streamloop_rate_limit_per_minute=LIMIT)


@pytest.fixture
async def frozen(sim: Sim) -> None:
    # Start the window at a known point, so that the quota never resets half-way through a test.
    await sim.control("POST", "clock", {"frozen": True})
    now = (await sim.control("GET", "clock"))["now"]
    seconds_into_minute = float(now[17:23])
    await sim.control("POST", "clock", {"advance_seconds": 60 - seconds_into_minute})


async def test_every_answer_carries_the_quota(sim: Sim, frozen: None) -> None:
    ok = await send(sim, "GET", STREAMS)
    unauthorized = await send(sim, "GET", STREAMS, auth=False, headers={"Authorization": "Bearer nope"})
    missing = await send(sim, "GET", f"{STREAMS}/stream_missing")
    assert [a.status for a in (ok, unauthorized, missing)] == [200, 401, 404]
    for answer in (ok, missing):
        assert answer.headers["RateLimit-Limit"] == str(LIMIT)
        assert answer.headers["RateLimit-Reset"] == "60"
    assert [ok.headers["RateLimit-Remaining"], missing.headers["RateLimit-Remaining"]] == ["2", "1"]
    # The wrong token is a different caller with a quota of its own.
    assert unauthorized.headers["RateLimit-Remaining"] == "2"


async def test_a_spent_quota_is_429_until_the_window_ends(sim: Sim, frozen: None) -> None:
    for _ in range(LIMIT):
        assert (await send(sim, "GET", STREAMS)).status == 200
    await sim.control("POST", "clock", {"advance_seconds": 20})
    limited = await send(sim, "GET", STREAMS)
    assert limited.status == 429
    assert limited.content_type == "application/problem+json"
    assert limited.body["code"] == "RATE_LIMITED"
    assert limited.headers["Retry-After"] == "40"
    assert limited.headers["RateLimit-Remaining"] == "0"
    assert (await send(sim, "POST", STREAMS, json={})).status == 429
    await sim.control("POST", "clock", {"advance_seconds": 40})
    assert (await send(sim, "GET", STREAMS)).status == 200


async def test_each_credential_has_its_own_quota(sim: Sim, frozen: None) -> None:
    for _ in range(LIMIT + 1):
        await send(sim, "GET", STREAMS)
    by_key = await send(sim, "GET", STREAMS, auth=False, headers={"X-API-Key": SIM_TOKEN, "X-Workspace-Id": "ws_1"})
    assert by_key.status == 200


async def test_a_limited_request_changes_nothing(sim: Sim, frozen: None) -> None:
    for _ in range(LIMIT):
        await send(sim, "GET", STREAMS)
    assert (await send(sim, "POST", STREAMS, json={"name": "x"})).status == 429
    await sim.control("POST", "clock", {"advance_seconds": 60})
    assert (await send(sim, "GET", STREAMS)).body["data"] == []


async def test_only_streamloop_is_limited(sim: Sim, frozen: None) -> None:
    for _ in range(LIMIT + 2):
        assert (await send(sim, "GET", f"{LOOP}/v1/live/sessions")).status == 200
        assert (await send(sim, "GET", f"{LIVEPUSH}/streams/mine")).status == 200
    assert "RateLimit-Limit" not in (await send(sim, "GET", f"{LOOP}/v1/live/sessions")).headers


async def test_limited_requests_are_counted(sim: Sim, frozen: None) -> None:
    for _ in range(LIMIT + 2):
        await send(sim, "GET", STREAMS)
    rows = {(r["status"], r["count"]) for r in (await sim.stats())["requests"]}
    assert rows == {(200, LIMIT), (429, 2)}
