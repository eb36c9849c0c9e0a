"""Streamloop simulator: auth, the stream resource, every state move, timed phases and idempotency."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Any

import pytest
from test_sim_support import STREAMLOOP, STREAMLOOP_STATES, send

from gateway.simulators.streamloop.idempotency import (
    Claimed,
    IdempotencyStore,
    Replay,
    Reused,
    StoredAnswer,
    Wait,
)
from tests.conftest import Sim

STREAMS = f"{STREAMLOOP}/streams"
STREAM_FIELDS = [
    "id",
    "createdAt",
    "updatedAt",
    "name",
    "state",
    "quality",
    "framerate",
    "destinationID",
    "playlistIDs",
    "preparedPlaylistIDs",
    "streamDuration",
    "scheduleStartAt",
    "scheduleEndAt",
    "startedAt",
    "stoppedAt",
    "agentModeEnabled",
    "runBackupStream",
    "streamBackend",
    "streamDestination",
]


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def new_stream(sim: Sim, **fields: Any) -> dict[str, Any]:
    answer = await send(sim, "POST", STREAMS, json={"name": "Lofi 24/7", "destinationID": "dest_1"} | fields)
    assert answer.status == 201, answer.text
    return answer.body


async def force(sim: Sim, stream_id: str, state: str) -> None:
    await sim.control("POST", f"streamloop/streams/{stream_id}/state", {"state": state})


async def state_of(sim: Sim, stream_id: str) -> dict[str, Any]:
    answer = await send(sim, "GET", f"{STREAMS}/{stream_id}")
    assert answer.status == 200
    return answer.body


# -- auth ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("headers", "status", "code"),
    [
        ({"Authorization": "Bearer sim-token"}, 200, None),
        ({"X-API-Key": "sim-token", "X-Workspace-Id": "ws_1"}, 200, None),
        ({"X-API-Key": "sim-token"}, 400, "WORKSPACE_REQUIRED"),
        ({"X-API-Key": "sim-token", "X-Workspace-Id": ""}, 400, "WORKSPACE_REQUIRED"),
        ({"X-API-Key": "wrong", "X-Workspace-Id": "ws_1"}, 401, "UNAUTHORIZED"),
        ({"Authorization": "Bearer wrong"}, 401, "UNAUTHORIZED"),
        ({}, 401, "UNAUTHORIZED"),
    ],
)
async def test_credentials(sim: Sim, headers: dict[str, str], status: int, code: str | None) -> None:
    answer = await send(sim, "GET", STREAMS, headers=headers, auth=False)
    assert answer.status == status
    if code is not None:
        assert answer.content_type == "application/problem+json"
        assert answer.body["code"] == code


# -- the resource ------------------------------------------------------------------------------------


async def test_create_answers_the_whole_stream(sim: Sim) -> None:
    body = {
        "name": "Lofi",
        "destinationID": "dest_1",
        "quality": "q_1440p",
        "framerate": "f_60",
        "playlistIDs": ["pl_1"],
        "preparedPlaylistIDs": ["pl_2"],
        "streamDuration": 3600,
        "agentModeEnabled": True,
        "runBackupStream": True,
        "streamBackend": "manifest",
        "streamDestination": "youtube",
        "streamKey": "secret-key",
        "youtubeSettingsID": "yt_1",
    }
    stream = await new_stream(sim, **body)
    assert list(stream) == STREAM_FIELDS
    assert stream["id"].startswith("stream_") and len(stream["id"]) == len("stream_") + 26
    assert stream["state"] == "draft"
    for name in ("name", "quality", "framerate", "playlistIDs", "streamDuration", "streamBackend"):
        assert stream[name] == body[name]
    assert "streamKey" not in stream
    assert stream["startedAt"] is None and stream["stoppedAt"] is None
    assert stream["createdAt"] == stream["updatedAt"]


async def test_create_defaults(sim: Sim) -> None:
    stream = (await send(sim, "POST", STREAMS, json={})).body
    assert stream["state"] == "draft"
    assert stream["playlistIDs"] == [] and stream["preparedPlaylistIDs"] == []
    assert stream["streamDuration"] == 0
    assert stream["name"] is None and stream["destinationID"] is None


async def test_create_with_a_start_time_is_scheduled(sim: Sim) -> None:
    stream = await new_stream(sim, scheduleStartAt="2030-01-01T00:00:00Z", scheduleEndAt="2030-01-01T04:00:00Z")
    assert stream["state"] == "scheduled"
    assert stream["scheduleStartAt"] == "2030-01-01T00:00:00.000Z"


async def test_schedule_end_must_follow_start(sim: Sim) -> None:
    answer = await send(
        sim,
        "POST",
        STREAMS,
        json={"scheduleStartAt": "2030-01-01T04:00:00Z", "scheduleEndAt": "2030-01-01T00:00:00Z"},
    )
    assert answer.status == 400
    assert "scheduleEndAt" in answer.body["detail"]


async def test_get_and_404(sim: Sim) -> None:
    stream = await new_stream(sim)
    assert await state_of(sim, stream["id"]) == stream
    missing = await send(sim, "GET", f"{STREAMS}/stream_01HZZZZZZZZZZZZZZZZZZZZZZZ")
    assert (missing.status, missing.body["code"]) == (404, "NOT_FOUND")


async def test_list_pages_through_everything(sim: Sim) -> None:
    made = [(await new_stream(sim, name=f"s{i}"))["id"] for i in range(5)]
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        query = "limit=2" + (f"&cursor={cursor}" if cursor else "")
        page = (await send(sim, "GET", f"{STREAMS}?{query}")).body
        seen += [s["id"] for s in page["data"]]
        cursor = page["page"]["nextCursor"]
        assert page["page"]["hasMore"] is (cursor is not None)
        if cursor is None:
            break
    assert seen == made
    whole = (await send(sim, "GET", STREAMS)).body
    assert [s["id"] for s in whole["data"]] == made
    assert whole["page"] == {"hasMore": False, "nextCursor": None}


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "cursor=%%%"])
async def test_bad_list_queries_are_400(sim: Sim, query: str) -> None:
    answer = await send(sim, "GET", f"{STREAMS}?{query}")
    assert (answer.status, answer.body["code"]) == (400, "VALIDATION_FAILED")


async def test_patch_updates_and_moves_between_draft_and_scheduled(sim: Sim) -> None:
    stream = await new_stream(sim)
    path = f"{STREAMS}/{stream['id']}"
    patched = await send(sim, "PATCH", path, json={"name": "New", "quality": "q_720p"})
    assert (patched.status, patched.body["name"], patched.body["quality"]) == (200, "New", "q_720p")
    scheduled = await send(sim, "PATCH", path, json={"scheduleStartAt": "2030-01-01T00:00:00Z"})
    assert scheduled.body["state"] == "scheduled"
    unscheduled = await send(sim, "PATCH", path, json={"scheduleStartAt": None})
    assert unscheduled.body["state"] == "draft"
    invalid = await send(sim, "PATCH", path, json={"framerate": "f_120"})
    assert invalid.status == 400 and "framerate" in invalid.body["detail"]
    missing = await send(sim, "PATCH", f"{STREAMS}/stream_missing", json={})
    assert missing.status == 404


async def test_delete_is_permanent(sim: Sim) -> None:
    stream = await new_stream(sim)
    path = f"{STREAMS}/{stream['id']}"
    deleted = await send(sim, "DELETE", path)
    assert (deleted.status, deleted.text) == (204, "")
    assert (await send(sim, "GET", path)).status == 404
    assert (await send(sim, "DELETE", path)).status == 404
    assert (await send(sim, "GET", STREAMS)).body["data"] == []


# -- every state move ---------------------------------------------------------------------------------

STARTABLE = {"draft", "scheduled", "stopped", "failed", "invalid"}
STOPPABLE = {"preparing", "activating", "active", "failing"}
IMMUTABLE = {"preparing", "activating", "active", "failing", "stopping"}


@pytest.fixture
async def frozen(sim: Sim) -> None:
    await sim.control("POST", "clock", {"frozen": True})


@pytest.mark.parametrize("state", STREAMLOOP_STATES)
async def test_start_from_every_state(sim: Sim, frozen: None, state: str) -> None:
    stream = await new_stream(sim)
    await force(sim, stream["id"], state)
    answer = await send(sim, "POST", f"{STREAMS}/{stream['id']}/start")
    if state in STARTABLE:
        assert (answer.status, answer.body["state"]) == (202, "preparing")
    else:
        assert (answer.status, answer.body["code"]) == (409, "STREAM_ILLEGAL_TRANSITION")
        assert (await state_of(sim, stream["id"]))["state"] == state


@pytest.mark.parametrize("state", STREAMLOOP_STATES)
async def test_stop_from_every_state(sim: Sim, frozen: None, state: str) -> None:
    stream = await new_stream(sim)
    await force(sim, stream["id"], state)
    answer = await send(sim, "POST", f"{STREAMS}/{stream['id']}/stop")
    if state in STOPPABLE:
        assert (answer.status, answer.body["state"]) == (202, "stopping")
    else:
        assert (answer.status, answer.body["code"]) == (409, "STREAM_ILLEGAL_TRANSITION")


@pytest.mark.parametrize("state", STREAMLOOP_STATES)
async def test_schedule_from_every_state(sim: Sim, frozen: None, state: str) -> None:
    stream = await new_stream(sim)
    await force(sim, stream["id"], state)
    window = {"scheduleStartAt": "2030-01-01T00:00:00Z", "scheduleEndAt": "2030-01-02T00:00:00Z"}
    answer = await send(sim, "POST", f"{STREAMS}/{stream['id']}/schedule", json=window)
    if state in STARTABLE:
        assert (answer.status, answer.body["state"]) == (200, "scheduled")
        assert answer.body["scheduleEndAt"] == "2030-01-02T00:00:00.000Z"
    else:
        assert (answer.status, answer.body["code"]) == (409, "STREAM_ILLEGAL_TRANSITION")


@pytest.mark.parametrize("state", STREAMLOOP_STATES)
async def test_patch_from_every_state(sim: Sim, frozen: None, state: str) -> None:
    stream = await new_stream(sim)
    await force(sim, stream["id"], state)
    answer = await send(sim, "PATCH", f"{STREAMS}/{stream['id']}", json={"name": "changed"})
    if state in IMMUTABLE:
        assert (answer.status, answer.body["code"]) == (409, "IMMUTABLE_WHILE_LIVE")
        assert (await state_of(sim, stream["id"]))["name"] == "Lofi 24/7"
    else:
        assert (answer.status, answer.body["name"]) == (200, "changed")


async def test_start_without_a_destination_is_invalid(sim: Sim) -> None:
    stream = (await send(sim, "POST", STREAMS, json={"name": "nowhere"})).body
    answer = await send(sim, "POST", f"{STREAMS}/{stream['id']}/start")
    assert (answer.status, answer.body["state"]) == (202, "invalid")
    with_key = await send(sim, "PATCH", f"{STREAMS}/{stream['id']}", json={"streamKey": "abc"})
    assert with_key.status == 200
    again = await send(sim, "POST", f"{STREAMS}/{stream['id']}/start")
    assert (again.status, again.body["state"]) == (202, "preparing")


async def test_schedule_needs_a_start(sim: Sim) -> None:
    stream = await new_stream(sim)
    answer = await send(sim, "POST", f"{STREAMS}/{stream['id']}/schedule", json={"scheduleEndAt": None})
    assert answer.status == 400 and "scheduleStartAt" in answer.body["detail"]


async def test_unknown_stream_verbs_are_404(sim: Sim) -> None:
    for verb in ("start", "stop", "schedule"):
        answer = await send(
            sim, "POST", f"{STREAMS}/stream_missing/{verb}", json={"scheduleStartAt": "2030-01-01T00:00:00Z"}
        )
        assert (answer.status, answer.body["code"]) == (404, "NOT_FOUND")


# -- time ---------------------------------------------------------------------------------------------


async def test_phases_follow_the_clock(sim: Sim, frozen: None) -> None:
    stream = await new_stream(sim)
    started = (await send(sim, "POST", f"{STREAMS}/{stream['id']}/start")).body
    assert started["state"] == "preparing" and started["startedAt"] is None
    await sim.control("POST", "clock", {"advance_seconds": 0.049})
    assert (await state_of(sim, stream["id"]))["state"] == "preparing"
    await sim.control("POST", "clock", {"advance_seconds": 0.001})
    assert (await state_of(sim, stream["id"]))["state"] == "activating"
    await sim.control("POST", "clock", {"advance_seconds": 0.05})
    active = await state_of(sim, stream["id"])
    assert active["state"] == "active"
    assert ts(active["startedAt"]) - ts(started["updatedAt"]) == timedelta(seconds=0.1)

    stopping = (await send(sim, "POST", f"{STREAMS}/{stream['id']}/stop")).body
    assert stopping["state"] == "stopping"
    await sim.control("POST", "clock", {"advance_seconds": 1.0})
    stopped = await state_of(sim, stream["id"])
    assert stopped["state"] == "stopped"
    assert ts(stopped["stoppedAt"]) - ts(stopping["updatedAt"]) == timedelta(seconds=1)
    assert stopped["startedAt"] == active["startedAt"]


async def test_a_long_pause_takes_every_due_step_at_its_own_time(sim: Sim, frozen: None) -> None:
    stream = await new_stream(sim)
    started = (await send(sim, "POST", f"{STREAMS}/{stream['id']}/start")).body
    await sim.control("POST", "clock", {"advance_seconds": 3600})
    listed = (await send(sim, "GET", STREAMS)).body["data"][0]
    assert listed["state"] == "active"
    assert ts(listed["startedAt"]) == ts(started["updatedAt"]) + timedelta(seconds=0.1)


async def test_a_restart_is_a_new_run(sim: Sim, frozen: None) -> None:
    stream = await new_stream(sim)
    await force(sim, stream["id"], "active")
    await send(sim, "POST", f"{STREAMS}/{stream['id']}/stop")
    await sim.control("POST", "clock", {"advance_seconds": 5})
    assert (await state_of(sim, stream["id"]))["stoppedAt"] is not None
    restarted = (await send(sim, "POST", f"{STREAMS}/{stream['id']}/start")).body
    assert (restarted["state"], restarted["startedAt"], restarted["stoppedAt"]) == ("preparing", None, None)


# -- idempotency --------------------------------------------------------------------------------------


async def test_a_repeat_replays_the_stored_answer(sim: Sim) -> None:
    key = {"Idempotency-Key": "create-1"}
    first = await send(sim, "POST", STREAMS, json={"name": "once", "destinationID": "d"}, headers=key)
    again = await send(sim, "POST", STREAMS, json={"destinationID": "d", "name": "once"}, headers=key)
    assert first.status == again.status == 201
    assert "Idempotency-Replayed" not in first.headers
    assert again.headers["Idempotency-Replayed"] == "true"
    assert again.text == first.text
    assert len((await send(sim, "GET", STREAMS)).body["data"]) == 1


async def test_the_same_key_with_another_body_is_422(sim: Sim) -> None:
    key = {"Idempotency-Key": "create-2"}
    await send(sim, "POST", STREAMS, json={"name": "a"}, headers=key)
    other = await send(sim, "POST", STREAMS, json={"name": "b"}, headers=key)
    assert (other.status, other.body["code"]) == (422, "IDEMPOTENCY_KEY_REUSED")
    elsewhere = await send(sim, "POST", f"{STREAMS}/stream_x/start", headers=key)
    assert elsewhere.status == 422


async def test_errors_below_500_are_replayed_too(sim: Sim) -> None:
    stream = await new_stream(sim)
    await send(sim, "POST", f"{STREAMS}/{stream['id']}/start")
    key = {"Idempotency-Key": "start-twice"}
    first = await send(sim, "POST", f"{STREAMS}/{stream['id']}/start", headers=key)
    await force(sim, stream["id"], "stopped")
    again = await send(sim, "POST", f"{STREAMS}/{stream['id']}/start", headers=key)
    assert first.status == again.status == 409
    assert again.headers["Idempotency-Replayed"] == "true"


async def test_5xx_answers_are_not_stored(sim: Sim) -> None:
    await sim.control("POST", "faults", {"streamloop": {"error_burst": 1}})
    key = {"Idempotency-Key": "after-outage"}
    failed = await send(sim, "POST", STREAMS, json={"name": "x"}, headers=key)
    assert failed.status == 503
    executed = await send(sim, "POST", STREAMS, json={"name": "x"}, headers=key)
    assert executed.status == 201
    assert "Idempotency-Replayed" not in executed.headers
    replayed = await send(sim, "POST", STREAMS, json={"name": "x"}, headers=key)
    assert replayed.headers["Idempotency-Replayed"] == "true"


async def test_patch_is_idempotent(sim: Sim) -> None:
    stream = await new_stream(sim)
    key = {"Idempotency-Key": "rename"}
    first = await send(sim, "PATCH", f"{STREAMS}/{stream['id']}", json={"name": "A"}, headers=key)
    await send(sim, "PATCH", f"{STREAMS}/{stream['id']}", json={"name": "B"})
    again = await send(sim, "PATCH", f"{STREAMS}/{stream['id']}", json={"name": "A"}, headers=key)
    assert again.headers["Idempotency-Replayed"] == "true"
    assert again.text == first.text
    assert (await state_of(sim, stream["id"]))["name"] == "B"


async def test_gets_and_deletes_ignore_the_key(sim: Sim) -> None:
    stream = await new_stream(sim)
    key = {"Idempotency-Key": "read"}
    await send(sim, "GET", STREAMS, headers=key)
    listed = await send(sim, "GET", STREAMS, headers=key)
    assert "Idempotency-Replayed" not in listed.headers
    assert (await send(sim, "DELETE", f"{STREAMS}/{stream['id']}", headers=key)).status == 204
    assert (await send(sim, "DELETE", f"{STREAMS}/{stream['id']}", headers=key)).status == 404


async def test_keys_are_scoped_to_the_credential(sim: Sim) -> None:
    body = {"name": "scoped"}
    key = "shared-key"
    bearer = await send(sim, "POST", STREAMS, json=body, headers={"Idempotency-Key": key})
    workspace = {"X-API-Key": "sim-token", "X-Workspace-Id": "ws_1", "Idempotency-Key": key}
    by_key = await send(sim, "POST", STREAMS, json=body, headers=workspace, auth=False)
    assert by_key.status == 201
    assert "Idempotency-Replayed" not in by_key.headers
    assert by_key.body["id"] != bearer.body["id"]
    other_workspace = workspace | {"X-Workspace-Id": "ws_2"}
    assert (
        "Idempotency-Replayed"
        not in (await send(sim, "POST", STREAMS, json=body, headers=other_workspace, auth=False)).headers
    )


async def test_a_key_is_forgotten_after_24_hours(sim: Sim, frozen: None) -> None:
    key = {"Idempotency-Key": "old"}
    first = await send(sim, "POST", STREAMS, json={"name": "x"}, headers=key)
    await sim.control("POST", "clock", {"advance_seconds": 24 * 3600 - 1})
    assert (await send(sim, "POST", STREAMS, json={"name": "x"}, headers=key)).headers["Idempotency-Replayed"] == "true"
    await sim.control("POST", "clock", {"advance_seconds": 1})
    later = await send(sim, "POST", STREAMS, json={"name": "x"}, headers=key)
    assert "Idempotency-Replayed" not in later.headers
    assert later.body["id"] != first.body["id"]


async def test_concurrent_duplicates_run_once(sim: Sim) -> None:
    key = {"Idempotency-Key": "burst"}
    answers = await asyncio.gather(*(send(sim, "POST", STREAMS, json={"name": "once"}, headers=key) for _ in range(10)))
    assert {a.status for a in answers} == {201}
    assert len({a.text for a in answers}) == 1
    assert sum("Idempotency-Replayed" in a.headers for a in answers) == 9
    assert len((await send(sim, "GET", STREAMS)).body["data"]) == 1


async def test_the_store_makes_a_duplicate_wait_for_the_first() -> None:
    store = IdempotencyStore()
    now = datetime.fromisoformat("2030-01-01T00:00:00+00:00")
    scope = ("bearer", "k")
    assert isinstance(store.claim(scope, "print-a", now), Claimed)
    waiting = store.claim(scope, "print-a", now)
    assert isinstance(waiting, Wait)
    assert isinstance(store.claim(scope, "print-b", now), Reused)
    store.finish(scope, StoredAnswer("print-a", 201, b"{}", "application/json", now))
    assert waiting.done.done()
    assert isinstance(store.claim(scope, "print-a", now), Replay)


async def test_the_store_lets_the_next_one_run_when_nothing_was_kept() -> None:
    store = IdempotencyStore()
    now = datetime.fromisoformat("2030-01-01T00:00:00+00:00")
    scope = ("bearer", "k")
    store.claim(scope, "p", now)
    waiting = store.claim(scope, "p", now)
    store.finish(scope, None)
    assert isinstance(waiting, Wait) and waiting.done.done()
    assert isinstance(store.claim(scope, "p", now), Claimed)
