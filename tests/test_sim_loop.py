"""Loop Live simulator: calls and their lifecycle, sessions, listing, updates and registration."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from test_sim_support import LOOP, send

from tests.conftest import Sim

CALLS = f"{LOOP}/v1/live/calls"
SESSIONS = f"{LOOP}/v1/sessions"
MISSING_UUID = "00000000-0000-4000-8000-000000000000"


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


async def new_call(sim: Sim, **fields: Any) -> dict[str, Any]:
    answer = await send(sim, "POST", CALLS, json={"host_user_id": "user_1", "title": "Check-in"} | fields)
    assert answer.status == 201, answer.text
    return answer.body


async def new_session(sim: Sim, **fields: Any) -> dict[str, Any]:
    body = {
        "host_id": "host_1",
        "brand_id": "brand_1",
        "title": "Office hours",
        "scheduled_at": "2030-01-01T09:00:00Z",
        "max_participants": 3,
    } | fields
    answer = await send(sim, "POST", SESSIONS, json=body)
    assert answer.status == 201, answer.text
    return answer.body


# -- calls --------------------------------------------------------------------------------------------


async def test_create_call_answers_a_scheduled_row_without_live(sim: Sim) -> None:
    call = await new_call(sim, scheduled_at="2030-01-01T09:00:00+01:00", metadata={"room": 1})
    assert call["status"] == "scheduled"
    assert call["stream_call_type"] == "default"
    assert call["stream_call_id"]
    assert call["scheduled_at"] == "2030-01-01T08:00:00.000Z"
    assert call["started_at"] is None and call["ended_at"] is None and call["recording_url"] is None
    assert "live" not in call
    assert call["created_at"].endswith("Z")


async def test_get_call_adds_the_live_status(sim: Sim) -> None:
    call = await new_call(sim)
    got = await send(sim, "GET", f"{CALLS}/{call['id']}")
    assert got.status == 200
    assert got.body["live"] == {"is_live": False, "current_session_id": None, "ended_at": None}
    assert {k: v for k, v in got.body.items() if k != "live"} == call


async def test_a_provider_session_makes_the_call_live(sim: Sim) -> None:
    call = await new_call(sim)
    live = await sim.control("POST", f"loop/calls/{call['id']}/session-start", {"session_id": "sess_1"})
    assert live["status"] == "live"
    assert live["started_at"] is not None
    assert live["live"] == {"is_live": True, "current_session_id": "sess_1", "ended_at": None}
    got = await send(sim, "GET", f"{CALLS}/{call['id']}")
    assert got.body == live


async def test_end_then_the_recording_arrives_after_the_delay(sim: Sim) -> None:
    await sim.control("POST", "clock", {"frozen": True})
    call = await new_call(sim)
    await sim.control("POST", f"loop/calls/{call['id']}/session-start")
    ended = await send(sim, "POST", f"{CALLS}/{call['id']}/end")
    assert ended.status == 200
    assert ended.body["status"] == "ended"
    assert ended.body["ended_at"] is not None
    assert ended.body["live"]["is_live"] is False
    assert ended.body["live"]["current_session_id"] is None
    assert ended.body["live"]["ended_at"] == ended.body["ended_at"]
    assert ended.body["recording_url"] is None

    await sim.control("POST", "clock", {"advance_seconds": 0.999})
    assert (await send(sim, "GET", f"{CALLS}/{call['id']}")).body["recording_url"] is None
    await sim.control("POST", "clock", {"advance_seconds": 0.001})
    ready = (await send(sim, "GET", f"{CALLS}/{call['id']}")).body
    assert ready["recording_url"].endswith(f"{call['id']}.mp4")
    assert ts(ready["recording_ready_at"]) - ts(ready["ended_at"]) == timedelta(seconds=1)


async def test_ending_twice_changes_nothing(sim: Sim) -> None:
    call = await new_call(sim)
    first = await send(sim, "POST", f"{CALLS}/{call['id']}/end")
    second = await send(sim, "POST", f"{CALLS}/{call['id']}/end")
    assert second.status == 200
    assert second.body["ended_at"] == first.body["ended_at"]
    assert second.body["status"] == "ended"


async def test_recording_ready_trigger_is_immediate(sim: Sim) -> None:
    await sim.control("POST", "clock", {"frozen": True})
    call = await new_call(sim)
    await send(sim, "POST", f"{CALLS}/{call['id']}/end")
    ready = await sim.control("POST", f"loop/calls/{call['id']}/recording-ready")
    assert ready["recording_url"] is not None
    assert ready["recording_ready_at"] == ready["ended_at"]


async def test_session_end_trigger_ends_a_live_call(sim: Sim) -> None:
    call = await new_call(sim)
    await sim.control("POST", f"loop/calls/{call['id']}/session-start")
    ended = await sim.control("POST", f"loop/calls/{call['id']}/session-end")
    assert ended["status"] == "ended"
    assert ended["live"]["is_live"] is False
    assert ended["live"]["ended_at"] is not None


async def test_provider_error_during_a_live_call_errors_it(sim: Sim) -> None:
    call = await new_call(sim)
    await sim.control("POST", f"loop/calls/{call['id']}/session-start")
    errored = await sim.control("POST", f"loop/calls/{call['id']}/provider-error")
    assert errored["status"] == "errored"
    assert errored["live"]["is_live"] is False
    assert errored["recording_url"] is None


@pytest.mark.parametrize(
    ("trigger", "before"),
    [
        ("session-start", "ended"),
        ("session-end", "scheduled"),
        ("session-end", "ended"),
        ("provider-error", "ended"),
    ],
)
async def test_triggers_that_make_no_sense_conflict(sim: Sim, trigger: str, before: str) -> None:
    call = await new_call(sim)
    if before == "ended":
        await send(sim, "POST", f"{CALLS}/{call['id']}/end")
    answer = await send(sim, "POST", f"/_sim/loop/calls/{call['id']}/{trigger}", auth=False)
    assert answer.status == 409


async def test_a_second_session_while_live_conflicts(sim: Sim) -> None:
    call = await new_call(sim)
    await sim.control("POST", f"loop/calls/{call['id']}/session-start")
    answer = await send(sim, "POST", f"/_sim/loop/calls/{call['id']}/session-start", auth=False)
    assert answer.status == 409


@pytest.mark.parametrize(
    ("mode", "status", "error"),
    [("not_configured", 503, "provider_not_configured"), ("failing", 502, "provider_error")],
)
async def test_the_provider_gates_create_and_end(sim: Sim, mode: str, status: int, error: str) -> None:
    call = await new_call(sim)
    await sim.control("POST", "faults", {"loop": {"provider": mode}})
    created = await send(sim, "POST", CALLS, json={"host_user_id": "u", "title": "t"})
    assert (created.status, created.body["error"]) == (status, error)
    ended = await send(sim, "POST", f"{CALLS}/{call['id']}/end")
    assert (ended.status, ended.body["error"]) == (status, error)
    got = await send(sim, "GET", f"{CALLS}/{call['id']}")
    assert got.status == 200
    assert got.body["status"] == "scheduled"
    assert got.body["live"] is None
    # Sessions do not need the provider.
    assert (await send(sim, "GET", f"{LOOP}/v1/live/sessions")).status == 200


async def test_an_invalid_body_is_checked_before_the_provider(sim: Sim) -> None:
    await sim.control("POST", "faults", {"loop": {"provider": "not_configured"}})
    answer = await send(sim, "POST", CALLS, json={"title": "t"})
    assert answer.status == 400


@pytest.mark.parametrize("path", [f"{CALLS}/{MISSING_UUID}", f"{CALLS}/not-a-uuid"])
async def test_unknown_call_is_404(sim: Sim, path: str) -> None:
    got = await send(sim, "GET", path)
    assert got.status == 404
    assert got.body["error"] == "not_found"
    assert (await send(sim, "POST", f"{path}/end")).status == 404


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer nope"}, {"Authorization": "sim-token"}])
async def test_missing_or_wrong_token_is_401(sim: Sim, headers: dict[str, str]) -> None:
    answer = await send(sim, "POST", CALLS, json={"host_user_id": "u", "title": "t"}, headers=headers, auth=False)
    assert answer.status == 401
    assert answer.body["error"] == "unauthorized"
    assert answer.body["message"]


# -- sessions -----------------------------------------------------------------------------------------


async def test_create_session_fills_the_defaults(sim: Sim) -> None:
    session = await new_session(sim)
    assert session["kind"] == "live"
    assert session["metadata"] == {}
    assert session["category"] is None
    assert session["duration_minutes"] is None
    assert session["registered_count"] == 0
    assert session["is_registered"] is False
    assert session["status"] == "scheduled"
    assert session["stream_call_id"] is None
    got = await send(sim, "GET", f"{SESSIONS}/{session['id']}")
    assert got.body == session


async def test_unknown_session_is_404(sim: Sim) -> None:
    for method, path, body in (
        ("GET", f"{SESSIONS}/{MISSING_UUID}", None),
        ("PATCH", f"{SESSIONS}/{MISSING_UUID}", {"title": "x"}),
        ("PATCH", f"{LOOP}/v1/admin/sessions/{MISSING_UUID}", {"status": "cancelled"}),
        ("POST", f"{SESSIONS}/{MISSING_UUID}/register", {"role": "guest"}),
    ):
        answer = await send(sim, method, path, json=body)
        assert answer.status == 404, (method, path)
        assert answer.body["error"] == "not_found"


async def test_session_status_trigger_moves_a_session(sim: Sim) -> None:
    session = await new_session(sim)
    live = await sim.control("POST", f"loop/sessions/{session['id']}/status", {"status": "live"})
    assert live["status"] == "live"
    assert live["started_at"] is not None and live["stream_call_id"] is not None
    await sim.control("POST", "clock", {"advance_seconds": 90})
    ended = await sim.control("POST", f"loop/sessions/{session['id']}/status", {"status": "ended"})
    assert ended["status"] == "ended"
    assert ended["ended_at"] is not None
    assert ended["duration_minutes"] == 2
    assert ended["recording_url"] is not None


async def test_list_filters(sim: Sim) -> None:
    await sim.control("POST", "clock", {"frozen": True})
    now = datetime.fromisoformat((await sim.control("GET", "clock"))["now"].replace("Z", "+00:00"))
    future = (now + timedelta(days=1)).isoformat()
    past = (now - timedelta(days=1)).isoformat()
    upcoming = await new_session(sim, brand_id="b1", host_id="h1", scheduled_at=future)
    office = await new_session(sim, brand_id="b1", host_id="h2", scheduled_at=future, kind="office_hours")
    overdue = await new_session(sim, brand_id="b1", host_id="h1", scheduled_at=past)
    cancelled = await new_session(sim, brand_id="b1", host_id="h1", scheduled_at=future)
    await send(sim, "PATCH", f"{LOOP}/v1/admin/sessions/{cancelled['id']}", json={"status": "cancelled"})
    other_brand = await new_session(sim, brand_id="b2", scheduled_at=future)

    async def ids(query: str) -> set[str]:
        answer = await send(sim, "GET", f"{LOOP}/v1/live/sessions?{query}")
        assert answer.status == 200, answer.text
        return {s["id"] for s in answer.body["sessions"]}

    assert await ids("brand_id=b2") == {other_brand["id"]}
    assert await ids("brand_id=b1&host_id=h2") == {office["id"]}
    assert await ids("brand_id=b1&kind=office_hours") == {office["id"]}
    assert await ids("brand_id=b1&status=cancelled") == {cancelled["id"]}
    assert await ids("brand_id=b1&upcoming=true") == {upcoming["id"], office["id"]}
    assert await ids("brand_id=b1&upcoming=false") == {overdue["id"], cancelled["id"]}


async def test_list_pages_are_stable_and_end_with_a_null_cursor(sim: Sim) -> None:
    made = [await new_session(sim, scheduled_at=f"2030-01-0{1 + i % 3}T09:00:00Z") for i in range(7)]
    expected = [s["id"] for s in sorted(made, key=lambda s: (s["scheduled_at"], s["id"]))]
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        query = "limit=3" + (f"&cursor={cursor}" if cursor else "")
        page = (await send(sim, "GET", f"{LOOP}/v1/live/sessions?{query}")).body
        assert len(page["sessions"]) <= 3
        seen += [s["id"] for s in page["sessions"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == expected
    default = (await send(sim, "GET", f"{LOOP}/v1/live/sessions")).body
    assert default["next_cursor"] is None and len(default["sessions"]) == 7


async def test_list_default_limit_is_20(sim: Sim) -> None:
    await sim.control("POST", "seed", {"seed": 1, "counts": {"loop_session": 25}})
    page = (await send(sim, "GET", f"{LOOP}/v1/live/sessions")).body
    assert len(page["sessions"]) == 20
    assert page["next_cursor"] is not None


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("limit=0", "limit"),
        ("limit=101", "limit"),
        ("limit=ten", "limit"),
        ("cursor=bogus", "cursor"),
        ("status=paused", "status"),
        ("kind=webinar", "kind"),
        ("upcoming=yes", "upcoming"),
    ],
)
async def test_bad_list_queries_are_400(sim: Sim, query: str, field: str) -> None:
    answer = await send(sim, "GET", f"{LOOP}/v1/live/sessions?{query}")
    assert answer.status == 400
    assert answer.body["error"] == "validation_error"
    assert field in answer.body["message"]


async def test_patch_changes_the_allowed_fields(sim: Sim) -> None:
    session = await new_session(sim)
    changes = {
        "title": "Renamed",
        "scheduled_at": "2031-05-05T10:00:00Z",
        "max_participants": 10,
        "kind": "office_hours",
        "metadata": {"room": "b"},
    }
    patched = await send(sim, "PATCH", f"{SESSIONS}/{session['id']}", json=changes | {"status": "cancelled"})
    assert patched.status == 200
    assert patched.body["title"] == "Renamed"
    assert patched.body["scheduled_at"] == "2031-05-05T10:00:00.000Z"
    assert patched.body["max_participants"] == 10
    assert patched.body["kind"] == "office_hours"
    assert patched.body["metadata"] == {"room": "b"}
    # Only the admin endpoint moves the status.
    assert patched.body["status"] == "scheduled"


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"title": ""}, "title"),
        ({"max_participants": 0}, "max_participants"),
        ({"kind": "webinar"}, "kind"),
        ({"scheduled_at": "2031-05-05"}, "scheduled_at"),
        ({"metadata": []}, "metadata"),
    ],
)
async def test_patch_validates_like_create(sim: Sim, changes: dict[str, Any], field: str) -> None:
    session = await new_session(sim)
    answer = await send(sim, "PATCH", f"{SESSIONS}/{session['id']}", json=changes)
    assert answer.status == 400
    assert field in answer.body["message"]


async def test_admin_patch_cancels_and_restores(sim: Sim) -> None:
    session = await new_session(sim)
    admin = f"{LOOP}/v1/admin/sessions/{session['id']}"
    cancelled = await send(sim, "PATCH", admin, json={"status": "cancelled", "title": "Off"})
    assert (cancelled.body["status"], cancelled.body["title"]) == ("cancelled", "Off")
    restored = await send(sim, "PATCH", admin, json={"status": "scheduled"})
    assert restored.body["status"] == "scheduled"
    invalid = await send(sim, "PATCH", admin, json={"status": "live"})
    assert invalid.status == 400
    assert "status" in invalid.body["message"]


async def test_register_counts_and_knows_the_caller(sim: Sim) -> None:
    session = await new_session(sim)
    register = f"{SESSIONS}/{session['id']}/register"
    guest = await send(sim, "POST", register, json={"guest_email": "a@example.com", "role": "guest"})
    assert guest.status == 201
    assert guest.body["session_id"] == session["id"]
    assert guest.body["role"] == "guest"
    after_guest = (await send(sim, "GET", f"{SESSIONS}/{session['id']}")).body
    assert (after_guest["registered_count"], after_guest["is_registered"]) == (1, False)
    me = await send(sim, "POST", register, json={"role": "participant"})
    assert me.status == 201
    after_me = (await send(sim, "GET", f"{SESSIONS}/{session['id']}")).body
    assert (after_me["registered_count"], after_me["is_registered"]) == (2, True)


async def test_registering_twice_is_409(sim: Sim) -> None:
    session = await new_session(sim)
    register = f"{SESSIONS}/{session['id']}/register"
    await send(sim, "POST", register, json={"guest_email": "a@example.com", "role": "guest"})
    again = await send(sim, "POST", register, json={"guest_email": "A@Example.com", "role": "guest"})
    assert again.status == 409
    await send(sim, "POST", register, json={"role": "host"})
    me_again = await send(sim, "POST", register, json={"role": "host"})
    assert me_again.status == 409
    assert me_again.body["error"] == "already_registered"


async def test_a_full_session_is_412(sim: Sim) -> None:
    session = await new_session(sim, max_participants=1)
    register = f"{SESSIONS}/{session['id']}/register"
    assert (await send(sim, "POST", register, json={"role": "participant"})).status == 201
    full = await send(sim, "POST", register, json={"guest_email": "b@example.com", "role": "guest"})
    assert full.status == 412
    assert full.body["error"] == "session_full"


@pytest.mark.parametrize(("status", "expected"), [("live", 201), ("ended", 412), ("cancelled", 412)])
async def test_registration_depends_on_the_status(sim: Sim, status: str, expected: int) -> None:
    session = await new_session(sim)
    await sim.control("POST", f"loop/sessions/{session['id']}/status", {"status": status})
    answer = await send(sim, "POST", f"{SESSIONS}/{session['id']}/register", json={"role": "guest"})
    assert answer.status == expected


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "role"), ({"role": "speaker"}, "role"), ({"role": "guest", "guest_email": 5}, "guest_email")],
)
async def test_register_validates_its_body(sim: Sim, body: dict[str, Any], field: str) -> None:
    session = await new_session(sim)
    answer = await send(sim, "POST", f"{SESSIONS}/{session['id']}/register", json=body)
    assert answer.status == 400
    assert field in answer.body["message"]
