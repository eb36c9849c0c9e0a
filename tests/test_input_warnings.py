"""Input a vendor cannot take is said, never dropped in silence: `createLiveEvent` warns per target of each
common field it could not pass to that vendor, and `updateLiveEvent` applies what the vendor can change and
says what it applied and what it could not (refusing, naming the field, only when nothing could apply)."""

from __future__ import annotations

from typing import Any

from tests.conftest import Sim
from tests.gateway_harness import Gateway
from tests.test_mutations import create_input

CREATE = """
mutation($input: CreateLiveEventInput!) {
  createLiveEvent(input: $input) {
    events { source title scheduledEnd }
    failures { source code }
    warnings { source field message }
  }
}"""

UPDATE = """
mutation($id: ID!, $input: UpdateLiveEventInput!) {
  updateLiveEvent(id: $id, input: $input) {
    event { title scheduledStart scheduledEnd }
    applied
    warnings { source field message }
  }
}"""


async def created(gateway: Gateway, input: dict[str, Any]) -> dict[str, Any]:
    body = await gateway.query(CREATE, {"input": input})
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["createLiveEvent"]
    assert payload["failures"] == []
    return payload


async def test_create_warns_per_target_of_each_field_the_vendor_does_not_keep(sim: Sim, gateway: Gateway) -> None:
    payload = await created(gateway, create_input())
    warned = {(w["source"], w["field"]): w["message"] for w in payload["warnings"]}
    assert warned == {
        ("LOOP_CALL", "scheduledEnd"): "Loop Live calls have no scheduled end",
        ("LOOP_SESSION", "scheduledEnd"): "Loop Live sessions have no scheduled end",
        ("STREAMLOOP_STREAM", "hostId"): "Streamloop streams have no host",
        ("STREAMLOOP_STREAM", "metadata"): "Streamloop keeps no metadata",
        ("LIVEPUSH_STREAM", "scheduledStart"): "Livepush keeps no schedule",
        ("LIVEPUSH_STREAM", "scheduledEnd"): "Livepush keeps no schedule",
        ("LIVEPUSH_STREAM", "hostId"): "Livepush streams have no host",
        ("LIVEPUSH_STREAM", "metadata"): "Livepush keeps no metadata",
    }
    ends = {e["source"]: e["scheduledEnd"] for e in payload["events"]}
    assert ends["STREAMLOOP_STREAM"] == "2031-05-01T19:00:00+00:00"  # kept where the vendor takes it
    assert ends["LOOP_CALL"] is None and ends["LIVEPUSH_STREAM"] is None


async def test_create_with_only_what_each_vendor_takes_warns_of_nothing(sim: Sim, gateway: Gateway) -> None:
    plain = {"title": "Plain", "targets": {"livepush": {"category": "SIMULCAST"}, "streamloop": {}}}
    assert (await created(gateway, plain))["warnings"] == []


async def loop_session(gateway: Gateway) -> str:
    payload = await created(
        gateway, create_input(loopSession={"brandId": "brand-1", "maxParticipants": 5, "kind": "LIVE"})
    )
    [event] = payload["events"]
    ids = await gateway.query("{ liveEvents(filter: {sources: [LOOP_SESSION]}) { edges { node { id } } } }")
    [edge] = ids["data"]["liveEvents"]["edges"]
    assert event["source"] == "LOOP_SESSION"
    return str(edge["node"]["id"])


async def test_update_applies_what_the_vendor_can_change_and_says_what_it_could_not(sim: Sim, gateway: Gateway) -> None:
    session = await loop_session(gateway)
    body = await gateway.query(
        UPDATE, {"id": session, "input": {"title": "Moved", "scheduledEnd": "2031-05-01T20:00:00Z"}}
    )
    assert "errors" not in body, body
    assert body["data"]["updateLiveEvent"] == {
        "event": {"title": "Moved", "scheduledStart": "2031-05-01T18:00:00+00:00", "scheduledEnd": None},
        "applied": ["title"],
        "warnings": [
            {"source": "LOOP_SESSION", "field": "scheduledEnd", "message": "Loop Live sessions have no scheduled end"}
        ],
    }


async def test_update_with_nothing_the_vendor_can_change_is_refused_naming_the_field(
    sim: Sim, gateway: Gateway
) -> None:
    session = await loop_session(gateway)
    await sim.control("POST", "stats/reset")
    body = await gateway.query(UPDATE, {"id": session, "input": {"scheduledEnd": "2031-05-01T20:00:00Z"}})
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UNSUPPORTED_BY_VENDOR"
    assert error["message"] == "scheduledEnd: Loop Live sessions have no scheduled end"
    assert await sim.vendor_requests("loop") == 0  # nothing was sent


async def test_an_update_the_vendor_takes_whole_applies_every_field(sim: Sim, gateway: Gateway) -> None:
    payload = await created(gateway, {"title": "S", "targets": {"streamloop": {}}})
    assert payload["events"][0]["source"] == "STREAMLOOP_STREAM"
    ids = await gateway.query("{ liveEvents(filter: {sources: [STREAMLOOP_STREAM]}) { edges { node { id } } } }")
    stream = ids["data"]["liveEvents"]["edges"][0]["node"]["id"]
    change = {"title": "T", "scheduledStart": "2032-01-01T10:00:00Z", "scheduledEnd": "2032-01-01T11:00:00Z"}
    body = await gateway.query(UPDATE, {"id": stream, "input": change})
    assert "errors" not in body, body
    assert body["data"]["updateLiveEvent"]["applied"] == ["title", "scheduledStart", "scheduledEnd"]
    assert body["data"]["updateLiveEvent"]["warnings"] == []


async def test_a_new_start_alone_keeps_the_streams_planned_end(sim: Sim, gateway: Gateway) -> None:
    # Fields left out stay as they are: Streamloop's schedule route clears an end it is not sent, so moving
    # only the start must not erase the planned end while `applied` says only scheduledStart.
    window = {"scheduledStart": "2032-01-01T10:00:00Z", "scheduledEnd": "2032-01-01T11:00:00Z"}
    await created(gateway, {"title": "S", **window, "targets": {"streamloop": {}}})
    ids = await gateway.query("{ liveEvents(filter: {sources: [STREAMLOOP_STREAM]}) { edges { node { id } } } }")
    stream = ids["data"]["liveEvents"]["edges"][0]["node"]["id"]
    body = await gateway.query(UPDATE, {"id": stream, "input": {"scheduledStart": "2032-01-01T09:30:00Z"}})
    assert "errors" not in body, body
    assert body["data"]["updateLiveEvent"] == {
        "event": {
            "title": "S",
            "scheduledStart": "2032-01-01T09:30:00+00:00",
            "scheduledEnd": "2032-01-01T11:00:00+00:00",
        },
        "applied": ["scheduledStart"],
        "warnings": [],
    }
    # A start after the planned end it would keep is refused, naming the end, and nothing changes.
    body = await gateway.query(UPDATE, {"id": stream, "input": {"scheduledStart": "2032-01-01T12:00:00Z"}})
    error = body["errors"][0]
    assert error["extensions"]["code"] == "BAD_USER_INPUT" and error["extensions"]["field"] == "scheduledEnd", error
    refreshed = await gateway.query(
        f'mutation {{ refreshLiveEvent(id: "{stream}") {{ event {{ scheduledStart scheduledEnd }} }} }}'
    )
    assert refreshed["data"]["refreshLiveEvent"]["event"] == {
        "scheduledStart": "2032-01-01T09:30:00+00:00",
        "scheduledEnd": "2032-01-01T11:00:00+00:00",
    }
