"""Every simulator answer, success and error, checked against the schemas transcribed from the vendors'
pages (tests/contracts), and request validation checked against the request schemas themselves."""

from __future__ import annotations

from typing import Any

import pytest
from test_sim_support import LIVEPUSH, LOOP, STREAMLOOP, assert_contract, conforms, send

from tests.conftest import Sim

LOOP_CALL = {"host_user_id": "user_1", "title": "Check-in"}
LOOP_SESSION = {
    "host_id": "host_1",
    "brand_id": "brand_1",
    "title": "Office hours",
    "scheduled_at": "2030-01-01T09:00:00Z",
    "max_participants": 2,
}
MISSING_UUID = "00000000-0000-4000-8000-000000000000"


# -- Loop Live --------------------------------------------------------------------------------------


async def test_loop_call_answers_match_the_contract(sim: Sim) -> None:
    created = await send(sim, "POST", f"{LOOP}/v1/live/calls", json=LOOP_CALL | {"metadata": {"a": 1}})
    assert created.status == 201
    assert_contract("loop-call.201", created.body)
    call_id = created.body["id"]

    got = await send(sim, "GET", f"{LOOP}/v1/live/calls/{call_id}")
    assert got.status == 200
    assert_contract("loop-call-detail.200", got.body)

    live = await sim.control("POST", f"loop/calls/{call_id}/session-start")
    assert_contract("loop-call-detail.200", live)

    ended = await send(sim, "POST", f"{LOOP}/v1/live/calls/{call_id}/end")
    assert ended.status == 200
    assert_contract("loop-call-detail.200", ended.body)

    ready = await sim.control("POST", f"loop/calls/{call_id}/recording-ready")
    assert_contract("loop-call-detail.200", ready)


async def test_loop_call_with_provider_unreachable_has_null_live(sim: Sim) -> None:
    created = await send(sim, "POST", f"{LOOP}/v1/live/calls", json=LOOP_CALL)
    await sim.control("POST", "faults", {"loop": {"provider": "failing"}})
    got = await send(sim, "GET", f"{LOOP}/v1/live/calls/{created.body['id']}")
    assert got.body["live"] is None
    assert_contract("loop-call-detail.200", got.body)


async def test_loop_session_answers_match_the_contract(sim: Sim) -> None:
    created = await send(sim, "POST", f"{LOOP}/v1/sessions", json=LOOP_SESSION)
    assert created.status == 201
    assert_contract("loop-session.201", created.body)
    session_id = created.body["id"]
    for answer in (
        await send(sim, "GET", f"{LOOP}/v1/sessions/{session_id}"),
        await send(sim, "PATCH", f"{LOOP}/v1/sessions/{session_id}", json={"title": "New"}),
        await send(sim, "PATCH", f"{LOOP}/v1/admin/sessions/{session_id}", json={"status": "cancelled"}),
    ):
        assert answer.status == 200
        assert_contract("loop-session.201", answer.body)
    for status in ("live", "ended"):
        assert_contract(
            "loop-session.201",
            await sim.control("POST", f"loop/sessions/{session_id}/status", {"status": status}),
        )
    listed = await send(sim, "GET", f"{LOOP}/v1/live/sessions")
    assert listed.status == 200
    assert_contract("loop-session-list.200", listed.body)


async def test_seeded_loop_data_matches_the_contract(sim: Sim) -> None:
    seeded = await sim.control("POST", "seed", {"seed": 3, "count": 12})
    for call_id in seeded["loop_call"]:
        assert_contract("loop-call-detail.200", (await send(sim, "GET", f"{LOOP}/v1/live/calls/{call_id}")).body)
    listed = await send(sim, "GET", f"{LOOP}/v1/live/sessions?limit=100")
    assert_contract("loop-session-list.200", listed.body)
    assert len(listed.body["sessions"]) == 12


@pytest.mark.parametrize(
    ("method", "path", "body", "status"),
    [
        ("POST", "/v1/live/calls", {"title": "x"}, 400),
        ("POST", "/v1/sessions", {}, 400),
        ("GET", f"/v1/live/calls/{MISSING_UUID}", None, 404),
        ("POST", f"/v1/live/calls/{MISSING_UUID}/end", None, 404),
        ("GET", f"/v1/sessions/{MISSING_UUID}", None, 404),
        ("PATCH", f"/v1/sessions/{MISSING_UUID}", {}, 404),
        ("POST", f"/v1/sessions/{MISSING_UUID}/register", {"role": "guest"}, 404),
        ("GET", "/v1/live/sessions?limit=0", None, 400),
        ("GET", "/v1/nothing-here", None, 404),
    ],
)
async def test_loop_errors_match_the_contract(sim: Sim, method: str, path: str, body: Any, status: int) -> None:
    answer = await send(sim, method, LOOP + path, json=body)
    assert answer.status == status
    assert answer.content_type == "application/json"
    assert_contract("loop-error", answer.body)


async def test_loop_provider_errors_match_the_contract(sim: Sim) -> None:
    for mode, status in (("not_configured", 503), ("failing", 502)):
        await sim.control("POST", "faults", {"loop": {"provider": mode}})
        answer = await send(sim, "POST", f"{LOOP}/v1/live/calls", json=LOOP_CALL)
        assert answer.status == status
        assert_contract("loop-error", answer.body)
    unauthorized = await send(sim, "GET", f"{LOOP}/v1/live/sessions", auth=False)
    assert unauthorized.status == 401
    assert_contract("loop-error", unauthorized.body)


# -- Streamloop -------------------------------------------------------------------------------------


async def test_streamloop_answers_match_the_contract(sim: Sim) -> None:
    created = await send(
        sim,
        "POST",
        f"{STREAMLOOP}/streams",
        json={"name": "24/7 lofi", "destinationID": "dest_1", "quality": "q_1080p", "framerate": "f_30"},
    )
    assert created.status == 201
    assert_contract("streamloop-stream", created.body)
    stream = f"{STREAMLOOP}/streams/{created.body['id']}"
    answers = [
        await send(sim, "GET", stream),
        await send(sim, "PATCH", stream, json={"name": "renamed"}),
        await send(sim, "POST", f"{stream}/start"),
        await send(sim, "POST", f"{stream}/stop"),
    ]
    await sim.control("POST", f"streamloop/streams/{created.body['id']}/state", {"state": "stopped"})
    answers.append(await send(sim, "POST", f"{stream}/schedule", json={"scheduleStartAt": "2030-01-01T00:00:00Z"}))
    for answer in answers:
        assert answer.status in (200, 202)
        assert_contract("streamloop-stream", answer.body)
    listed = await send(sim, "GET", f"{STREAMLOOP}/streams")
    assert_contract("streamloop-stream-page", listed.body)


async def test_seeded_streamloop_data_matches_the_contract(sim: Sim) -> None:
    await sim.control("POST", "seed", {"seed": 3, "count": 12})
    listed = await send(sim, "GET", f"{STREAMLOOP}/streams?limit=100")
    assert_contract("streamloop-stream-page", listed.body)
    assert len(listed.body["data"]) == 12


@pytest.mark.parametrize(
    ("method", "path", "body", "headers", "status"),
    [
        ("POST", "/streams", {"quality": "q_480p"}, {}, 400),
        ("GET", "/streams?limit=101", None, {}, 400),
        ("GET", "/streams/stream_missing", None, {}, 404),
        ("DELETE", "/streams/stream_missing", None, {}, 404),
        ("GET", "/streams", None, {"Authorization": "Bearer wrong"}, 401),
        ("GET", "/streams", None, {"Authorization": "", "X-API-Key": "sim-token"}, 401),
        ("PUT", "/streams", None, {}, 405),
        ("GET", "/nothing-here", None, {}, 404),
    ],
)
async def test_streamloop_errors_are_problem_json(
    sim: Sim, method: str, path: str, body: Any, headers: dict[str, str], status: int
) -> None:
    answer = await send(sim, method, STREAMLOOP + path, json=body, headers=headers)
    assert answer.status == status
    assert answer.content_type == "application/problem+json"
    assert_contract("streamloop-problem", answer.body)
    assert answer.body["status"] == status


async def test_streamloop_conflicts_and_reuse_are_problem_json(sim: Sim) -> None:
    created = await send(sim, "POST", f"{STREAMLOOP}/streams", json={"destinationID": "d"})
    stream = f"{STREAMLOOP}/streams/{created.body['id']}"
    await send(sim, "POST", f"{stream}/start")
    for answer in (
        await send(sim, "POST", f"{stream}/start"),
        await send(sim, "PATCH", stream, json={"name": "x"}),
        await send(sim, "POST", f"{STREAMLOOP}/streams", json={}, headers={"Idempotency-Key": "k"}),
        await send(sim, "POST", f"{STREAMLOOP}/streams", json={"name": "other"}, headers={"Idempotency-Key": "k"}),
    ):
        assert_contract("streamloop-problem" if answer.status >= 400 else "streamloop-stream", answer.body)


# -- Livepush ---------------------------------------------------------------------------------------


async def test_livepush_answers_match_the_contract(sim: Sim) -> None:
    created = await send(sim, "POST", f"{LIVEPUSH}/streams", json={"category": "simulcast", "name": "Main"})
    assert created.status == 201
    assert_contract("livepush-stream-created.201", created.body)
    stream = f"{LIVEPUSH}/streams/{created.body['id']}"
    got = await send(sim, "GET", stream)
    assert_contract("livepush-stream.200", got.body)
    await sim.control("POST", "seed", {"seed": 5, "count": 6})
    assert_contract("livepush-stream-list.200", (await send(sim, "GET", f"{LIVEPUSH}/streams/mine")).body)
    assert_contract("livepush-destinations.200", (await send(sim, "GET", f"{LIVEPUSH}/streams/me/destinations")).body)
    recordings = await send(sim, "GET", f"{LIVEPUSH}/streams/me/recordings")
    assert recordings.body, "seed 5 makes at least one recording"
    assert_contract("livepush-recordings.200", recordings.body)
    deleted = await send(sim, "DELETE", stream)
    assert_contract("livepush-stream-deleted.200", deleted.body)


@pytest.mark.parametrize(
    ("method", "path", "body", "auth", "status"),
    [
        ("POST", "/streams", {"name": "x"}, True, 400),
        ("GET", "/streams/st_missing", None, True, 404),
        ("DELETE", "/streams/st_missing", None, True, 404),
        ("GET", "/streams/mine", None, False, 401),
    ],
)
async def test_livepush_errors_match_the_contract(
    sim: Sim, method: str, path: str, body: Any, auth: bool, status: int
) -> None:
    answer = await send(sim, method, LIVEPUSH + path, json=body, auth=auth)
    assert answer.status == status
    assert_contract("livepush-error", answer.body)


# -- request validation: 400 exactly when the vendor's schema says the body is invalid ----------------

LOOP_CALL_BODIES: list[tuple[Any, str | None]] = [
    (LOOP_CALL, None),
    (LOOP_CALL | {"scheduled_at": None, "metadata": {}, "extra": 1}, None),
    (LOOP_CALL | {"scheduled_at": "2030-01-01T09:00:00+02:00"}, None),
    (LOOP_CALL | {"scheduled_at": "2030-01-01T09:00:00.123456Z"}, None),
    ({"title": "x"}, "host_user_id"),
    ({"host_user_id": "u"}, "title"),
    ({"host_user_id": "", "title": "x"}, "host_user_id"),
    ({"host_user_id": "u", "title": ""}, "title"),
    ({"host_user_id": None, "title": "x"}, "host_user_id"),
    ({"host_user_id": 7, "title": "x"}, "host_user_id"),
    (LOOP_CALL | {"scheduled_at": "2030-01-01"}, "scheduled_at"),
    (LOOP_CALL | {"scheduled_at": "2030-01-01T09:00:00"}, "scheduled_at"),
    (LOOP_CALL | {"scheduled_at": "tomorrow"}, "scheduled_at"),
    (LOOP_CALL | {"scheduled_at": "2030-02-30T09:00:00Z"}, "scheduled_at"),
    (LOOP_CALL | {"metadata": []}, "metadata"),
    (LOOP_CALL | {"metadata": None}, "metadata"),
    ([LOOP_CALL], None),
]
LOOP_SESSION_BODIES: list[tuple[Any, str | None]] = [
    (LOOP_SESSION, None),
    (LOOP_SESSION | {"kind": "office_hours", "metadata": {"x": [1]}}, None),
    (LOOP_SESSION | {"max_participants": 2.0}, None),
    *[({k: v for k, v in LOOP_SESSION.items() if k != missing}, missing) for missing in LOOP_SESSION],
    (LOOP_SESSION | {"max_participants": 0}, "max_participants"),
    (LOOP_SESSION | {"max_participants": -3}, "max_participants"),
    (LOOP_SESSION | {"max_participants": 2.5}, "max_participants"),
    (LOOP_SESSION | {"max_participants": "2"}, "max_participants"),
    (LOOP_SESSION | {"max_participants": True}, "max_participants"),
    (LOOP_SESSION | {"kind": "webinar"}, "kind"),
    (LOOP_SESSION | {"kind": None}, "kind"),
    (LOOP_SESSION | {"scheduled_at": None}, "scheduled_at"),
    (LOOP_SESSION | {"brand_id": ""}, "brand_id"),
    (LOOP_SESSION | {"metadata": "x"}, "metadata"),
]
STREAMLOOP_BODIES: list[tuple[Any, str | None]] = [
    ({}, None),
    ({"name": None, "quality": None, "framerate": None, "streamDuration": None}, None),
    (
        {
            "quality": "q_2160p",
            "framerate": "f_60",
            "streamBackend": "manifest",
            "streamDestination": "youtube",
        },
        None,
    ),
    ({"playlistIDs": ["a", "b"], "preparedPlaylistIDs": [], "agentModeEnabled": True}, None),
    ({"scheduleStartAt": "2030-01-01T00:00:00Z", "scheduleEndAt": None}, None),
    ({"name": 5}, "name"),
    ({"quality": "q_480p"}, "quality"),
    ({"framerate": 30}, "framerate"),
    ({"streamBackend": "gstreamer"}, "streamBackend"),
    ({"streamDestination": "twitch"}, "streamDestination"),
    ({"playlistIDs": None}, "playlistIDs"),
    ({"playlistIDs": [1]}, "playlistIDs"),
    ({"preparedPlaylistIDs": "a"}, "preparedPlaylistIDs"),
    ({"streamDuration": 1.5}, "streamDuration"),
    ({"streamDuration": "60"}, "streamDuration"),
    ({"agentModeEnabled": "yes"}, "agentModeEnabled"),
    ({"runBackupStream": 1}, "runBackupStream"),
    ({"scheduleStartAt": "soon"}, "scheduleStartAt"),
    ({"destinationID": ["d"]}, "destinationID"),
    ("just a string", None),
]
LIVEPUSH_BODIES: list[tuple[Any, str | None]] = [
    ({"category": "simulcast", "name": "Main"}, None),
    ({"category": "schedule", "name": ""}, None),
    ({"name": "Main"}, "category"),
    ({"category": "simulcast"}, "name"),
    ({"category": "vod", "name": "Main"}, "category"),
    ({"category": "simulcast", "name": 5}, "name"),
    ({"category": None, "name": "Main"}, "category"),
    (None, None),
]


async def _check_validation(sim: Sim, path: str, schema: str, body: Any, field: str | None, error_text: str) -> None:
    answer = await send(sim, "POST", path, json=body)
    if conforms(schema, body):
        assert answer.status in (200, 201), answer.text
    else:
        assert answer.status == 400, f"{body!r} breaks {schema} but was accepted"
        message = answer.body[error_text]
        if field is not None:
            assert field in message


@pytest.mark.parametrize(("body", "field"), LOOP_CALL_BODIES)
async def test_loop_call_validation_follows_the_schema(sim: Sim, body: Any, field: str | None) -> None:
    await _check_validation(sim, f"{LOOP}/v1/live/calls", "loop-create-call.request", body, field, "message")


@pytest.mark.parametrize(("body", "field"), LOOP_SESSION_BODIES)
async def test_loop_session_validation_follows_the_schema(sim: Sim, body: Any, field: str | None) -> None:
    await _check_validation(sim, f"{LOOP}/v1/sessions", "loop-create-session.request", body, field, "message")


@pytest.mark.parametrize(("body", "field"), STREAMLOOP_BODIES)
async def test_streamloop_validation_follows_the_schema(sim: Sim, body: Any, field: str | None) -> None:
    await _check_validation(sim, f"{STREAMLOOP}/streams", "streamloop-create-stream.request", body, field, "detail")


@pytest.mark.parametrize(("body", "field"), LIVEPUSH_BODIES)
async def test_livepush_validation_follows_the_schema(sim: Sim, body: Any, field: str | None) -> None:
    await _check_validation(sim, f"{LIVEPUSH}/streams", "livepush-create-stream.request", body, field, "message")


async def test_validation_errors_carry_the_vendor_codes(sim: Sim) -> None:
    loop = await send(sim, "POST", f"{LOOP}/v1/live/calls", json={})
    assert loop.body["error"] == "validation_error"
    streamloop = await send(sim, "POST", f"{STREAMLOOP}/streams", json={"name": 1})
    assert streamloop.body["code"] == "VALIDATION_FAILED"
    not_json = await send(
        sim, "POST", f"{LOOP}/v1/live/calls", data="{not json", headers={"Content-Type": "application/json"}
    )
    assert not_json.status == 400
    assert not_json.body["error"] == "validation_error"
