"""`/_sim/`: health, stats, reset, seeding, the clock and the triggers."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from test_sim_support import LIVEPUSH, LOOP, STREAMLOOP, STREAMLOOP_STATES, send

from tests.conftest import Sim

ANCHOR = "2030-06-01T12:00:00Z"
MISSING_UUID = "00000000-0000-4000-8000-000000000000"


async def test_health(sim: Sim) -> None:
    answer = await send(sim, "GET", "/_sim/health", auth=False)
    assert (answer.status, answer.body) == (200, {"status": "ok"})


# -- stats --------------------------------------------------------------------------------------------


async def test_stats_count_by_vendor_method_route_and_status(sim: Sim) -> None:
    created = await send(sim, "POST", f"{LOOP}/v1/live/calls", json={"host_user_id": "u", "title": "t"})
    for _ in range(3):
        await send(sim, "GET", f"{LOOP}/v1/live/calls/{created.body['id']}")
    await send(sim, "GET", f"{LOOP}/v1/live/calls/{MISSING_UUID}")
    await send(sim, "GET", f"{STREAMLOOP}/streams")
    await send(sim, "GET", f"{LIVEPUSH}/streams/mine", auth=False)
    await send(sim, "GET", f"{LIVEPUSH}/no/such/route")
    await sim.control("GET", "health")
    rows = (await sim.stats())["requests"]
    assert rows == [
        {"vendor": "livepush", "method": "GET", "route": "/streams/mine", "status": 401, "count": 1},
        {"vendor": "livepush", "method": "GET", "route": "<unmatched>", "status": 404, "count": 1},
        {"vendor": "loop", "method": "GET", "route": "/v1/live/calls/{id}", "status": 200, "count": 3},
        {"vendor": "loop", "method": "GET", "route": "/v1/live/calls/{id}", "status": 404, "count": 1},
        {"vendor": "loop", "method": "POST", "route": "/v1/live/calls", "status": 201, "count": 1},
        {"vendor": "streamloop", "method": "GET", "route": "/streams", "status": 200, "count": 1},
    ]
    assert await sim.vendor_requests() == 8
    assert await sim.vendor_requests("loop") == 5


async def test_stats_only_reset_keeps_the_data(sim: Sim) -> None:
    created = await send(sim, "POST", f"{LIVEPUSH}/streams", json={"category": "simulcast", "name": "x"})
    assert await sim.control("POST", "reset", {"stats_only": True}) == {"reset": "stats"}
    assert await sim.vendor_requests() == 0
    assert (await send(sim, "GET", f"{LIVEPUSH}/streams/{created.body['id']}")).status == 200
    assert await sim.control("POST", "stats/reset") == {"reset": "stats"}
    assert await sim.vendor_requests() == 0


async def test_reset_clears_data_faults_stats_and_the_clock(sim: Sim) -> None:
    await sim.control("POST", "seed", {"seed": 1, "count": 2})
    created = await send(sim, "POST", f"{STREAMLOOP}/streams", json={}, headers={"Idempotency-Key": "k"})
    await sim.control("POST", "faults", {"loop": {"error_rate": 1.0}})
    await sim.control("POST", "clock", {"frozen": True, "advance_seconds": 3600})
    assert await sim.control("POST", "reset") == {"reset": "all"}
    assert await sim.control("GET", "faults") == {"loop": {}, "streamloop": {}, "livepush": {}}
    assert (await sim.control("GET", "clock"))["frozen"] is False
    assert await sim.vendor_requests() == 0
    assert (await send(sim, "GET", f"{LOOP}/v1/live/sessions")).body["sessions"] == []
    assert (await send(sim, "GET", f"{STREAMLOOP}/streams")).body["data"] == []
    assert (await send(sim, "GET", f"{LIVEPUSH}/streams/mine")).body == []
    # Idempotency keys are forgotten as well.
    again = await send(sim, "POST", f"{STREAMLOOP}/streams", json={}, headers={"Idempotency-Key": "k"})
    assert "Idempotency-Replayed" not in again.headers
    assert again.body["id"] != created.body["id"]


async def test_reset_without_a_body(sim: Sim) -> None:
    answer = await send(sim, "POST", "/_sim/reset", auth=False)
    assert (answer.status, answer.body) == (200, {"reset": "all"})


# -- seed ---------------------------------------------------------------------------------------------


async def snapshot(sim: Sim, seeded: dict[str, list[str]]) -> dict[str, Any]:
    """Everything the vendors say about the seeded events."""
    calls = [(await send(sim, "GET", f"{LOOP}/v1/live/calls/{i}")).body for i in seeded["loop_call"]]
    sessions = [(await send(sim, "GET", f"{LOOP}/v1/sessions/{i}")).body for i in seeded["loop_session"]]
    streams = (await send(sim, "GET", f"{STREAMLOOP}/streams?limit=100")).body
    pushes = (await send(sim, "GET", f"{LIVEPUSH}/streams/mine")).body
    recordings = (await send(sim, "GET", f"{LIVEPUSH}/streams/me/recordings")).body
    return {
        "calls": calls,
        "sessions": sessions,
        "streams": streams,
        "pushes": pushes,
        "recordings": recordings,
    }


async def test_the_same_seed_and_anchor_give_the_same_events(sim: Sim) -> None:
    first = await sim.control("POST", "seed", {"seed": 42, "count": 7, "anchor": ANCHOR})
    first_view = await snapshot(sim, first)
    await sim.control("POST", "reset")
    second = await sim.control("POST", "seed", {"seed": 42, "count": 7, "anchor": ANCHOR})
    assert second == first
    assert await snapshot(sim, second) == first_view


async def test_ids_depend_on_the_seed_alone(sim: Sim) -> None:
    first = await sim.control("POST", "seed", {"seed": 42, "count": 3, "anchor": ANCHOR})
    await sim.control("POST", "reset")
    later_anchor = await sim.control("POST", "seed", {"seed": 42, "count": 3, "anchor": "2031-01-01T00:00:00Z"})
    assert later_anchor == first
    other_seed = await sim.control("POST", "seed", {"seed": 43, "count": 3, "anchor": ANCHOR})
    for source, ids in other_seed.items():
        assert not set(ids) & set(first[source]), source


async def test_seeding_again_replaces_rather_than_repeats(sim: Sim) -> None:
    seeded = await sim.control("POST", "seed", {"seed": 9, "count": 4, "anchor": ANCHOR})
    view = await snapshot(sim, seeded)
    await sim.control("POST", "seed", {"seed": 9, "count": 4, "anchor": ANCHOR})
    assert await snapshot(sim, seeded) == view


async def test_without_an_anchor_a_frozen_clock_gives_the_same_events(sim: Sim) -> None:
    await sim.control("POST", "clock", {"frozen": True})
    first = await sim.control("POST", "seed", {"seed": 5, "count": 4})
    first_view = await snapshot(sim, first)
    await sim.control("POST", "seed", {"seed": 5, "count": 4})
    assert await snapshot(sim, first) == first_view


async def test_counts_per_source(sim: Sim) -> None:
    seeded = await sim.control(
        "POST", "seed", {"seed": 1, "counts": {"loop_call": 2, "streamloop_stream": 4, "livepush_stream": 0}}
    )
    assert {source: len(ids) for source, ids in seeded.items()} == {
        "loop_call": 2,
        "loop_session": 0,
        "streamloop_stream": 4,
        "livepush_stream": 0,
    }


async def test_a_seed_mixes_every_status_each_vendor_has(sim: Sim) -> None:
    seeded = await sim.control("POST", "seed", {"seed": 11, "count": 12, "anchor": ANCHOR})
    view = await snapshot(sim, seeded)
    assert set(Counter(c["status"] for c in view["calls"])) == {"scheduled", "live", "ended", "errored"}
    assert set(Counter(s["status"] for s in view["sessions"])) == {"scheduled", "live", "ended", "cancelled"}
    assert {s["kind"] for s in view["sessions"]} == {"live", "office_hours"}
    states = {s["state"] for s in view["streams"]["data"]}
    assert states == {"draft", "invalid", "scheduled", "active", "stopped", "failed"}
    assert {p["isDisabled"] for p in view["pushes"]} == {True, False}
    assert {p["metadata"]["category"] for p in view["pushes"]} == {"simulcast", "schedule"}
    assert view["recordings"]
    live = [c for c in view["calls"] if c["status"] == "live"]
    assert all(c["live"]["is_live"] and c["live"]["current_session_id"] for c in live)
    ended = [c for c in view["calls"] if c["status"] == "ended"]
    assert all(c["recording_url"] for c in ended)


async def test_seeded_times_lie_around_the_anchor(sim: Sim) -> None:
    seeded = await sim.control("POST", "seed", {"seed": 2, "count": 6, "anchor": ANCHOR})
    view = await snapshot(sim, seeded)
    for call in view["calls"]:
        if call["status"] == "scheduled" and call["scheduled_at"]:
            assert call["scheduled_at"] > ANCHOR
        if call["status"] in ("ended", "errored"):
            assert call["ended_at"] < ANCHOR
    scheduled = [s for s in view["streams"]["data"] if s["state"] == "scheduled"]
    assert all(s["scheduleStartAt"] > ANCHOR for s in scheduled)


@pytest.mark.parametrize(
    "body",
    [
        {"seed": "x"},
        {"seed": 1, "count": -1},
        {"seed": 1, "count": 100_000},
        {"seed": 1, "counts": {"zoom_meeting": 1}},
        {"seed": 1, "counts": {"loop_call": "2"}},
        {"seed": 1, "anchor": "tomorrow"},
        [1],
    ],
)
async def test_bad_seed_requests_are_400(sim: Sim, body: Any) -> None:
    answer = await send(sim, "POST", "/_sim/seed", json=body, auth=False)
    assert answer.status == 400
    assert answer.body["error"] == "bad_request"


# -- clock --------------------------------------------------------------------------------------------


async def test_the_clock_freezes_advances_and_resumes(sim: Sim) -> None:
    frozen = await sim.control("POST", "clock", {"frozen": True})
    assert frozen["frozen"] is True
    assert (await sim.control("GET", "clock"))["now"] == frozen["now"]
    moved = await sim.control("POST", "clock", {"advance_seconds": 90})
    assert moved["now"][:16] != frozen["now"][:16]
    resumed = await sim.control("POST", "clock", {"frozen": False})
    assert resumed["frozen"] is False
    assert resumed["now"] >= moved["now"]


@pytest.mark.parametrize("body", [{"advance_seconds": -1}, {"advance_seconds": "1"}, {"frozen": "yes"}])
async def test_bad_clock_requests_are_400(sim: Sim, body: dict[str, Any]) -> None:
    assert (await send(sim, "POST", "/_sim/clock", json=body, auth=False)).status == 400


# -- triggers -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (f"loop/calls/{MISSING_UUID}/session-start", None),
        (f"loop/calls/{MISSING_UUID}/session-end", None),
        (f"loop/calls/{MISSING_UUID}/recording-ready", None),
        (f"loop/calls/{MISSING_UUID}/provider-error", None),
        (f"loop/sessions/{MISSING_UUID}/status", {"status": "live"}),
        ("streamloop/streams/stream_missing/state", {"state": "failed"}),
    ],
)
async def test_triggers_on_unknown_ids_are_404(sim: Sim, path: str, body: Any) -> None:
    answer = await send(sim, "POST", f"/_sim/{path}", json=body, auth=False)
    assert answer.status == 404
    assert answer.body["error"] == "not_found"


async def test_trigger_bodies_are_checked(sim: Sim) -> None:
    seeded = await sim.control("POST", "seed", {"seed": 1, "count": 1})
    session = await send(
        sim, "POST", f"/_sim/loop/sessions/{seeded['loop_session'][0]}/status", json={"status": "paused"}
    )
    stream = await send(sim, "POST", f"/_sim/streamloop/streams/{seeded['streamloop_stream'][0]}/state", json={})
    assert (session.status, stream.status) == (400, 400)


@pytest.mark.parametrize("state", STREAMLOOP_STATES)
async def test_any_streamloop_state_can_be_forced(sim: Sim, state: str) -> None:
    await sim.control("POST", "clock", {"frozen": True})
    stream = (await send(sim, "POST", f"{STREAMLOOP}/streams", json={})).body
    forced = await sim.control("POST", f"streamloop/streams/{stream['id']}/state", {"state": state})
    assert forced["state"] == state
    assert (await send(sim, "GET", f"{STREAMLOOP}/streams/{stream['id']}")).body["state"] == state
