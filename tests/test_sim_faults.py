"""Fault knobs: each one's observable effect on every vendor, and that they spare `/_sim/`."""

from __future__ import annotations

import asyncio
import random
import time
from typing import Any

import aiohttp
import orjson
import pytest
from aiohttp import web
from test_sim_support import LIVEPUSH, LOOP, STREAMLOOP, send

from gateway.simulators import SIM_STATE, middleware
from gateway.simulators.faults import FaultBook
from tests.conftest import Sim

# One cheap read per vendor, and the field its error body always carries.
READS = {
    "loop": (f"{LOOP}/v1/live/sessions", "error"),
    "streamloop": (f"{STREAMLOOP}/streams", "code"),
    "livepush": (f"{LIVEPUSH}/streams/mine", "message"),
}
VENDORS = list(READS)


async def set_faults(sim: Sim, faults: dict[str, Any]) -> dict[str, Any]:
    answer: dict[str, Any] = await sim.control("POST", "faults", faults)
    return answer


async def read(sim: Sim, vendor: str, **kwargs: Any) -> Any:
    return await send(sim, "GET", READS[vendor][0], **kwargs)


@pytest.mark.parametrize("vendor", VENDORS)
async def test_error_rate_one_fails_every_request_with_the_chosen_status(sim: Sim, vendor: str) -> None:
    await set_faults(sim, {vendor: {"error_rate": 1.0, "error_status": 500}})
    for _ in range(3):
        answer = await read(sim, vendor)
        assert answer.status == 500
        assert READS[vendor][1] in answer.body
    await set_faults(sim, {vendor: {"error_rate": 1.0}})
    assert (await read(sim, vendor)).status == 503


async def test_error_rate_fails_a_share_of_requests(sim: Sim) -> None:
    sim.app[SIM_STATE].faults.rng = random.Random(7)
    await set_faults(sim, {"livepush": {"error_rate": 0.5}})
    statuses = [(await read(sim, "livepush")).status for _ in range(40)]
    assert set(statuses) == {200, 503}
    await set_faults(sim, {"livepush": {"error_rate": 0.0}})
    assert {(await read(sim, "livepush")).status for _ in range(10)} == {200}


@pytest.mark.parametrize("vendor", VENDORS)
async def test_error_burst_fails_the_next_n_then_recovers(sim: Sim, vendor: str) -> None:
    await set_faults(sim, {vendor: {"error_burst": 2, "error_status": 502}})
    assert [(await read(sim, vendor)).status for _ in range(4)] == [502, 502, 200, 200]
    assert (await sim.control("GET", "faults"))[vendor] == {"error_burst": 0, "error_status": 502}


@pytest.mark.parametrize("vendor", VENDORS)
async def test_hang_never_answers(sim: Sim, vendor: str) -> None:
    await set_faults(sim, {vendor: {"hang": True}})
    with pytest.raises(TimeoutError):
        await read(sim, vendor, give_up_after=0.2)
    rows = (await sim.stats())["requests"]
    assert [(r["vendor"], r["status"], r["count"]) for r in rows] == [(vendor, 0, 1)]


async def test_changing_the_faults_drops_a_held_request(sim: Sim) -> None:
    await set_faults(sim, {"livepush": {"hang": True}})
    # A POST, because aiohttp's client retries an idempotent request on a dropped keep-alive connection.
    held = asyncio.create_task(
        send(sim, "POST", f"{LIVEPUSH}/streams", json={"category": "simulcast", "name": "x"}, give_up_after=5)
    )
    for _ in range(500):  # until the simulator has the request in hand
        if (await sim.stats())["requests"]:
            break
        await asyncio.sleep(0.01)
    await set_faults(sim, {"livepush": {}})
    with pytest.raises(aiohttp.ClientError):
        await held
    assert (await read(sim, "livepush")).body == []


@pytest.mark.parametrize("vendor", VENDORS)
async def test_malformed_json_answers_200_with_a_broken_body(sim: Sim, vendor: str) -> None:
    await set_faults(sim, {vendor: {"malformed_json": True}})
    answer = await read(sim, vendor)
    assert answer.status == 200
    assert answer.content_type == "application/json"
    with pytest.raises(orjson.JSONDecodeError):
        orjson.loads(answer.text)


async def test_malformed_json_still_does_the_work(sim: Sim) -> None:
    await set_faults(sim, {"livepush": {"malformed_json": True}})
    created = await send(sim, "POST", f"{LIVEPUSH}/streams", json={"category": "simulcast", "name": "x"})
    assert created.status == 200
    await set_faults(sim, {"livepush": {}})
    assert len((await read(sim, "livepush")).body) == 1


@pytest.mark.parametrize("vendor", VENDORS)
async def test_rate_limited_answers_429_with_retry_after(sim: Sim, vendor: str) -> None:
    await set_faults(sim, {vendor: {"rate_limited": 7}})
    answer = await read(sim, vendor)
    assert answer.status == 429
    assert answer.headers["Retry-After"] == "7"
    assert READS[vendor][1] in answer.body
    if vendor == "streamloop":
        assert answer.body["code"] == "RATE_LIMITED"
        assert answer.content_type == "application/problem+json"
    if vendor == "loop":
        assert answer.body["error"] == "rate_limited"


async def test_rate_limited_rounds_retry_after_up(sim: Sim) -> None:
    await set_faults(sim, {"loop": {"rate_limited": 0.2}})
    assert (await read(sim, "loop")).headers["Retry-After"] == "1"


@pytest.mark.parametrize("vendor", VENDORS)
async def test_unauthorized_rejects_even_the_right_token(sim: Sim, vendor: str) -> None:
    await set_faults(sim, {vendor: {"unauthorized": True}})
    answer = await read(sim, vendor)
    assert answer.status == 401
    assert READS[vendor][1] in answer.body


@pytest.mark.parametrize("vendor", VENDORS)
async def test_reject_status_answers_a_4xx_in_the_vendor_shape(sim: Sim, vendor: str) -> None:
    await set_faults(sim, {vendor: {"reject_status": 422}})
    answer = await read(sim, vendor)
    assert answer.status == 422
    assert READS[vendor][1] in answer.body


async def test_reject_status_must_be_a_4xx(sim: Sim) -> None:
    async with sim.http.post(f"{sim.url}/_sim/faults", json={"loop": {"reject_status": 503}}) as resp:
        assert resp.status == 400


async def test_faults_are_per_vendor(sim: Sim) -> None:
    await set_faults(sim, {"streamloop": {"error_rate": 1.0}})
    assert (await read(sim, "streamloop")).status == 503
    assert (await read(sim, "loop")).status == 200
    assert (await read(sim, "livepush")).status == 200


async def test_faults_never_touch_the_control_surface(sim: Sim) -> None:
    await set_faults(sim, {v: {"error_rate": 1.0, "unauthorized": True, "hang": True} for v in VENDORS})
    for path in ("health", "stats", "faults", "clock"):
        assert (await send(sim, "GET", f"/_sim/{path}", auth=False, give_up_after=2)).status == 200


async def test_faulted_requests_are_counted_with_their_status(sim: Sim) -> None:
    await set_faults(sim, {"livepush": {"error_burst": 1}})
    await read(sim, "livepush")
    await read(sim, "livepush")
    rows = {(r["status"], r["count"]) for r in (await sim.stats())["requests"]}
    assert rows == {(503, 1), (200, 1)}


async def test_latency_and_jitter_hold_each_request_before_answering(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    held: list[float] = []

    async def record_hold(request: web.Request, book: FaultBook, seconds: float) -> str:
        held.append(seconds)
        return "elapsed"

    monkeypatch.setattr(middleware, "hold_request", record_hold)
    sim.app[SIM_STATE].faults.rng = random.Random(3)
    await set_faults(sim, {"loop": {"latency_ms": 250}})
    assert (await read(sim, "loop")).status == 200
    assert held == [0.25]
    held.clear()
    await set_faults(sim, {"loop": {"latency_ms": 100, "jitter_ms": 50}})
    for _ in range(6):
        await read(sim, "loop")
    assert all(0.1 <= seconds <= 0.15 for seconds in held)
    assert len(set(held)) > 1


async def test_a_client_that_gives_up_during_latency_is_not_served(sim: Sim) -> None:
    await set_faults(sim, {"livepush": {"latency_ms": 60_000}})
    with pytest.raises(TimeoutError):
        await send(sim, "POST", f"{LIVEPUSH}/streams", json={"category": "simulcast", "name": "x"}, give_up_after=0.2)
    for _ in range(500):  # until the simulator notices
        if (await sim.stats())["requests"]:
            break
        await asyncio.sleep(0.01)
    rows = (await sim.stats())["requests"]
    assert [(r["method"], r["status"], r["count"]) for r in rows] == [("POST", 0, 1)]
    assert sim.app[SIM_STATE].livepush.streams == {}


async def test_latency_comes_before_the_handler(sim: Sim) -> None:
    await set_faults(sim, {"livepush": {"latency_ms": 60_000}})
    create = asyncio.create_task(
        send(sim, "POST", f"{LIVEPUSH}/streams", json={"category": "simulcast", "name": "late"})
    )
    await asyncio.sleep(0.1)
    assert sim.app[SIM_STATE].livepush.streams == {}
    # New faults wake held requests; this one then carries on and is answered.
    await set_faults(sim, {"livepush": {}})
    assert (await create).status == 201
    assert len(sim.app[SIM_STATE].livepush.streams) == 1


async def test_get_faults_shows_what_is_set_and_empty_clears(sim: Sim) -> None:
    shown = await set_faults(sim, {"loop": {"latency_ms": 5, "provider": "failing"}, "livepush": {"hang": True}})
    assert shown == {
        "loop": {"latency_ms": 5.0, "provider": "failing"},
        "streamloop": {},
        "livepush": {"hang": True},
    }
    # A vendor left out keeps its faults; `{}` clears one.
    shown = await set_faults(sim, {"livepush": {}})
    assert shown == {"loop": {"latency_ms": 5.0, "provider": "failing"}, "streamloop": {}, "livepush": {}}
    assert await sim.control("GET", "faults") == shown


@pytest.mark.parametrize(
    "faults",
    [
        {"loop": {"latency": 5}},
        {"loop": {"error_rate": 2}},
        {"loop": {"error_status": 404}},
        {"loop": {"error_burst": -1}},
        {"loop": {"hang": "yes"}},
        {"loop": {"provider": "broken"}},
        {"streamloop": {"provider": "failing"}},
        {"zoom": {}},
        {"loop": []},
    ],
)
async def test_bad_faults_are_400_and_change_nothing(sim: Sim, faults: dict[str, Any]) -> None:
    await set_faults(sim, {"livepush": {"hang": True}})
    before = await sim.control("GET", "faults")
    answer = await send(sim, "POST", "/_sim/faults", json={"livepush": {}} | faults, auth=False)
    assert answer.status == 400
    assert answer.body["message"]
    assert await sim.control("GET", "faults") == before


async def test_a_release_due_as_a_hold_runs_out_is_not_missed() -> None:
    book = FaultBook()
    held = asyncio.create_task(book.hold(0.01))
    await asyncio.sleep(0)  # the hold is waiting
    # The loop is kept busy past the hold's time, and the release is due right after it: both come due in
    # one turn of the loop, the hold's timeout first.
    time.sleep(0.02)  # noqa: ASYNC251
    asyncio.get_running_loop().call_later(0, book.release_held)
    assert await held is True
