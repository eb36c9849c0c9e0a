"""Mutations end to end: fan-out create, idempotency, retries and every lifecycle verb on every source."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from gateway.ids import decode_global_id
from gateway.model import Source
from tests.conftest import Sim
from tests.gateway_harness import Gateway

EVENT = "id source status vendorStatus title isLive freshness { servedFrom }"

CREATE = f"""
mutation($input: CreateLiveEventInput!, $key: String) {{
  createLiveEvent(input: $input, idempotencyKey: $key) {{
    operationId replayed
    events {{ {EVENT} ... on LoopSession {{ brandId maxParticipants registeredCount }} }}
    failures {{ source code message retryable }}
  }}
}}"""

OPERATION = f"""
query($id: ID!) {{
  liveEventOperation(id: $id) {{
    id kind state
    targets {{ source state nativeId attempts event {{ {EVENT} }} failure {{ code retryable }} }}
  }}
}}"""

ALL_TARGETS = {
    "loopCall": {"hostUserId": "host-1"},
    "loopSession": {"brandId": "brand-1", "maxParticipants": 2, "kind": "OFFICE_HOURS"},
    "streamloop": {"quality": "Q_1080P", "framerate": "F_30", "destinationId": "dest-1", "streamDuration": 3600},
    "livepush": {"category": "SIMULCAST"},
}


def create_input(title: str = "Launch show", **targets: Any) -> dict[str, Any]:
    return {
        "title": title,
        "scheduledStart": "2031-05-01T18:00:00Z",
        "scheduledEnd": "2031-05-01T19:00:00Z",
        "hostId": "host-1",
        "metadata": {"team": "growth"},
        "targets": targets or ALL_TARGETS,
    }


async def create(gateway: Gateway, input: dict[str, Any], key: str | None = None) -> dict[str, Any]:
    return await gateway.query(CREATE, {"input": input, "key": key})


async def creates_at_vendors(sim: Sim) -> dict[str, int]:
    """Create requests each vendor answered with 2xx since the last reset."""
    stats = await sim.stats()
    routes = {
        ("loop", "/v1/live/calls"),
        ("loop", "/v1/sessions"),
        ("streamloop", "/streams"),
        ("livepush", "/streams"),
    }
    out: dict[str, int] = {}
    for row in stats["requests"]:
        if row["method"] == "POST" and (row["vendor"], row["route"]) in routes and 200 <= row["status"] < 300:
            key = f"{row['vendor']}{row['route']}"
            out[key] = out.get(key, 0) + row["count"]
    return out


async def verb(gateway: Gateway, name: str, id: str, extra: str = "") -> dict[str, Any]:
    field = "deletedId event" if name == "deleteLiveEvent" else "event"
    selection = f"deletedId event {{ {EVENT} }}" if field != "event" else f"event {{ {EVENT} }}"
    return await gateway.query(f'mutation {{ {name}(id: "{id}"{extra}) {{ {selection} }} }}')


async def test_fan_out_to_all_four_targets(sim: Sim, gateway: Gateway) -> None:
    body = await create(gateway, create_input())
    assert "errors" not in body, body
    payload = body["data"]["createLiveEvent"]
    assert payload["failures"] == [] and payload["replayed"] is False
    by_source = {e["source"]: e for e in payload["events"]}
    assert set(by_source) == {s.value for s in Source}
    assert by_source["LOOP_CALL"]["status"] == "SCHEDULED"
    assert by_source["LOOP_SESSION"]["brandId"] == "brand-1"
    assert by_source["STREAMLOOP_STREAM"]["vendorStatus"] == "scheduled"
    assert by_source["LIVEPUSH_STREAM"]["status"] == "DRAFT"
    assert {e["title"] for e in payload["events"]} == {"Launch show"}
    assert await creates_at_vendors(sim) == {
        "loop/v1/live/calls": 1,
        "loop/v1/sessions": 1,
        "streamloop/streams": 1,
        "livepush/streams": 1,
    }

    operation = (await gateway.query(OPERATION, {"id": payload["operationId"]}))["data"]["liveEventOperation"]
    assert operation["state"] == "DONE" and operation["kind"] == "create"
    assert [t["state"] for t in operation["targets"]] == ["SUCCEEDED"] * 4
    assert all(t["attempts"] == 1 for t in operation["targets"])

    # A read after the write shows the created events, from the index, without a vendor call.
    await sim.control("POST", "reset", {"stats_only": True})
    ids = [e["id"] for e in payload["events"]]
    read = await gateway.query(
        f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ ... on LiveEvent {{ {EVENT} }} }} }}", {"ids": ids}
    )
    assert [n["id"] for n in read["data"]["nodes"]] == ids
    assert await sim.vendor_requests() == 0


async def test_the_events_made_are_indexed_after_the_answer_and_read_meanwhile(
    sim: Sim, make_gateway: Callable[..., Any], mongo_db: Any
) -> None:
    # Write-backs wait a minute here, unless something needs them sooner.
    async with make_gateway(mongodb_database=mongo_db.name, write_behind_delay=60.0) as gw:
        payload = (await create(gw, create_input("Written behind")))["data"]["createLiveEvent"]
        ids = [e["id"] for e in payload["events"]]
        assert len(ids) == 4
        assert await mongo_db["events"].count_documents({"title": "Written behind"}) == 0
        await sim.control("POST", "reset", {"stats_only": True})
        read = await gw.query(
            f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ ... on LiveEvent {{ {EVENT} }} }} }}", {"ids": ids}
        )
        assert [n["id"] for n in read["data"]["nodes"]] == ids
        assert await sim.vendor_requests() == 0
        # A listing waits for the write.
        listed = await gw.query('{ liveEvents(first: 10, filter: { titleContains: "Written behind" }) { totalCount } }')
        assert listed["data"]["liveEvents"]["totalCount"] == 4
        assert await mongo_db["events"].count_documents({"title": "Written behind"}) == 4


FAILURE_KINDS = [
    pytest.param(
        "streamloop",
        {"error_rate": 1.0, "error_status": 500},
        "STREAMLOOP_STREAM",
        "VENDOR_UNAVAILABLE",
        True,
        id="5xx",
    ),
    pytest.param("livepush", {"hang": True}, "LIVEPUSH_STREAM", "VENDOR_UNAVAILABLE", True, id="timeout"),
    pytest.param("streamloop", {"reject_status": 422}, "STREAMLOOP_STREAM", "VENDOR_REJECTED", False, id="4xx"),
    pytest.param(
        "loop", {"provider": "not_configured"}, "LOOP_CALL", "VENDOR_NOT_CONFIGURED", False, id="not-configured"
    ),
]


@pytest.mark.parametrize(("vendor", "faults", "failing", "code", "retryable"), FAILURE_KINDS)
async def test_one_failing_target_leaves_the_others(
    sim: Sim,
    make_gateway: Callable[..., Any],
    settings_for: Any,
    vendor: str,
    faults: dict[str, Any],
    failing: str,
    code: str,
    retryable: bool,
) -> None:
    base = settings_for()
    short = base.livepush.model_copy(update={"read_timeout": 0.3})
    await sim.control("POST", "faults", {vendor: faults})
    async with make_gateway(livepush=short) as gw:
        body = await create(gw, create_input())
    payload = body["data"]["createLiveEvent"]
    [failure] = payload["failures"]
    assert failure["source"] == failing
    assert failure["code"] == code
    assert failure["retryable"] is retryable
    assert {e["source"] for e in payload["events"]} == {s.value for s in Source} - {failing}


async def test_invalid_target_calls_no_vendor_and_journals_nothing(sim: Sim, gateway: Gateway) -> None:
    targets = {**ALL_TARGETS, "loopSession": {"brandId": "b", "maxParticipants": 0}}
    body = await create(gateway, create_input(**targets))
    assert body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["field"] == "targets.loopSession.maxParticipants"
    assert "maxParticipants" in error["message"]
    assert await sim.vendor_requests() == 0
    assert await gateway.services.store.journal.collection.count_documents({}) == 0


async def test_session_without_a_start_names_the_field(sim: Sim, gateway: Gateway) -> None:
    input = create_input(loopSession=ALL_TARGETS["loopSession"])
    del input["scheduledStart"]
    body = await create(gateway, input)
    assert body["errors"][0]["extensions"]["field"] == "scheduledStart"
    assert await sim.vendor_requests() == 0


async def test_no_target_is_bad_input(gateway: Gateway) -> None:
    body = await create(gateway, {"title": "x", "targets": {}})
    assert body["errors"][0]["extensions"]["field"] == "targets"


async def test_replay_with_the_same_key_calls_no_vendor(sim: Sim, gateway: Gateway) -> None:
    first = (await create(gateway, create_input(), key="k-1"))["data"]["createLiveEvent"]
    await sim.control("POST", "reset", {"stats_only": True})
    again = (await create(gateway, create_input(), key="k-1"))["data"]["createLiveEvent"]
    assert await sim.vendor_requests() == 0
    assert again["replayed"] is True
    assert again["operationId"] == first["operationId"]
    assert sorted(e["id"] for e in again["events"]) == sorted(e["id"] for e in first["events"])


async def test_the_idempotency_key_header_works_too(sim: Sim, gateway: Gateway) -> None:
    query = {"query": CREATE, "variables": {"input": create_input(livepush={"category": "SCHEDULE"})}}
    answers = []
    for _ in range(2):
        async with gateway.http.post(f"{gateway.url}/graphql", json=query, headers={"Idempotency-Key": "h-1"}) as r:
            answers.append((await r.json())["data"]["createLiveEvent"])
    assert answers[1]["replayed"] is True and answers[0]["operationId"] == answers[1]["operationId"]
    assert await creates_at_vendors(sim) == {"livepush/streams": 1}


async def test_same_key_different_input_is_rejected(sim: Sim, gateway: Gateway) -> None:
    await create(gateway, create_input(), key="k-2")
    body = await create(gateway, create_input(title="Another show"), key="k-2")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "BAD_USER_INPUT"
    assert error["extensions"]["reason"] == "IDEMPOTENCY_KEY_REUSED"
    assert error["extensions"]["field"] == "idempotencyKey"


async def test_twenty_concurrent_requests_with_one_key_create_once(sim: Sim, gateway: Gateway) -> None:
    await sim.control("POST", "faults", {v: {"latency_ms": 100} for v in ("loop", "streamloop", "livepush")})
    answers = await asyncio.gather(*(create(gateway, create_input(), key="k-3") for _ in range(20)))
    payloads = [a["data"]["createLiveEvent"] for a in answers]
    assert len({p["operationId"] for p in payloads}) == 1
    assert sum(not p["replayed"] for p in payloads) == 1
    assert all(len(p["events"]) == 4 and not p["failures"] for p in payloads)
    assert await creates_at_vendors(sim) == {
        "loop/v1/live/calls": 1,
        "loop/v1/sessions": 1,
        "streamloop/streams": 1,
        "livepush/streams": 1,
    }


async def test_retry_runs_only_the_failed_targets(sim: Sim, gateway: Gateway) -> None:
    await sim.control("POST", "faults", {"streamloop": {"error_rate": 1.0}})
    payload = (await create(gateway, create_input()))["data"]["createLiveEvent"]
    assert [f["source"] for f in payload["failures"]] == ["STREAMLOOP_STREAM"]
    await sim.control("POST", "reset", {"stats_only": True})
    await sim.control("POST", "faults", {"streamloop": {}})

    body = await gateway.query(
        f'mutation {{ retryLiveEventOperation(operationId: "{payload["operationId"]}") '
        "{ state targets { source state attempts failure { code } } } }"
    )
    operation = body["data"]["retryLiveEventOperation"]
    assert operation["state"] == "DONE"
    by_source = {t["source"]: t for t in operation["targets"]}
    assert by_source["STREAMLOOP_STREAM"] == {
        "source": "STREAMLOOP_STREAM",
        "state": "SUCCEEDED",
        "attempts": 2,
        "failure": None,
    }
    assert {s: t["attempts"] for s, t in by_source.items() if s != "STREAMLOOP_STREAM"} == {
        "LOOP_CALL": 1,
        "LOOP_SESSION": 1,
        "LIVEPUSH_STREAM": 1,
    }
    assert await creates_at_vendors(sim) == {"streamloop/streams": 1}


async def test_unknown_operation(gateway: Gateway) -> None:
    body = await gateway.query('{ liveEventOperation(id: "op_nope") { id } }')
    assert body == {"data": {"liveEventOperation": None}}
    body = await gateway.query('mutation { retryLiveEventOperation(operationId: "op_nope") { id } }')
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def created_ids(gateway: Gateway) -> dict[str, str]:
    payload = (await create(gateway, create_input()))["data"]["createLiveEvent"]
    assert not payload["failures"]
    return {e["source"]: e["id"] for e in payload["events"]}


async def test_streamloop_lifecycle(sim: Sim, gateway: Gateway) -> None:
    stream = (await created_ids(gateway))["STREAMLOOP_STREAM"]
    started = await verb(gateway, "startLiveEvent", stream)
    assert started["data"]["startLiveEvent"]["event"]["status"] == "STARTING"

    again = await verb(gateway, "startLiveEvent", stream)
    [error] = again["errors"]
    assert error["extensions"]["code"] == "VENDOR_REJECTED"
    assert error["extensions"]["vendorCode"] == "STREAM_ILLEGAL_TRANSITION"
    assert error["extensions"]["vendor"] == "STREAMLOOP"

    renamed = await gateway.query(
        f'mutation {{ updateLiveEvent(id: "{stream}", input: {{title: "x"}}) {{ event {{ title }} }} }}'
    )
    assert renamed["errors"][0]["extensions"]["vendorCode"] == "IMMUTABLE_WHILE_LIVE"

    stopped = await verb(gateway, "stopLiveEvent", stream)
    assert stopped["data"]["stopLiveEvent"]["event"]["status"] == "STOPPING"
    deleted = await verb(gateway, "deleteLiveEvent", stream)
    assert deleted["data"]["deleteLiveEvent"] == {
        "deletedId": stream,
        "event": {**deleted["data"]["deleteLiveEvent"]["event"], "status": "CANCELLED", "vendorStatus": "deleted"},
    }
    # Read after write: the index shows the deletion at once.
    listed = await gateway.query(
        "{ liveEvents(first: 10, filter: {sources: [STREAMLOOP_STREAM]}) { edges { node { id status } } } }"
    )
    assert listed["data"]["liveEvents"]["edges"] == [{"node": {"id": stream, "status": "CANCELLED"}}]


async def test_streamloop_reschedule(sim: Sim, gateway: Gateway) -> None:
    stream = (await created_ids(gateway))["STREAMLOOP_STREAM"]
    body = await gateway.query(
        f'mutation {{ updateLiveEvent(id: "{stream}", input: {{title: "Renamed", '
        'scheduledStart: "2032-01-01T10:00:00Z", scheduledEnd: "2032-01-01T11:00:00Z"}) '
        "{ event { title status scheduledStart scheduledEnd } } }"
    )
    assert body["data"]["updateLiveEvent"]["event"] == {
        "title": "Renamed",
        "status": "SCHEDULED",
        "scheduledStart": "2032-01-01T10:00:00+00:00",
        "scheduledEnd": "2032-01-01T11:00:00+00:00",
    }


async def test_loop_call_lifecycle(sim: Sim, gateway: Gateway) -> None:
    call = (await created_ids(gateway))["LOOP_CALL"]
    for name in ("startLiveEvent", "cancelLiveEvent", "deleteLiveEvent"):
        body = await verb(gateway, name, call)
        assert body["errors"][0]["extensions"]["code"] == "UNSUPPORTED_BY_VENDOR", name
        assert body["errors"][0]["extensions"]["vendor"] == "LOOP"
    ended = await verb(gateway, "stopLiveEvent", call)
    assert ended["data"]["stopLiveEvent"]["event"]["status"] == "ENDED"


async def test_loop_session_lifecycle(sim: Sim, gateway: Gateway) -> None:
    session = (await created_ids(gateway))["LOOP_SESSION"]
    registered = await gateway.query(
        f'mutation {{ registerForLiveEvent(id: "{session}", input: {{guestEmail: "a@example.com", role: GUEST}}) '
        "{ event { ... on LoopSession { registeredCount } } } }"
    )
    assert registered["data"]["registerForLiveEvent"]["event"] == {"registeredCount": 1}
    twice = await gateway.query(
        f'mutation {{ registerForLiveEvent(id: "{session}", input: {{guestEmail: "a@example.com", role: GUEST}}) '
        "{ event { id } } }"
    )
    assert twice["errors"][0]["extensions"]["code"] == "VENDOR_REJECTED"
    assert twice["errors"][0]["extensions"]["vendorStatus"] == 409

    updated = await gateway.query(
        f'mutation {{ updateLiveEvent(id: "{session}", input: {{title: "Office hours"}}) {{ event {{ title }} }} }}'
    )
    assert updated["data"]["updateLiveEvent"]["event"] == {"title": "Office hours"}
    for name in ("startLiveEvent", "stopLiveEvent"):
        assert (await verb(gateway, name, session))["errors"][0]["extensions"]["code"] == "UNSUPPORTED_BY_VENDOR"
    cancelled = await verb(gateway, "cancelLiveEvent", session)
    assert cancelled["data"]["cancelLiveEvent"]["event"]["status"] == "CANCELLED"


async def test_livepush_lifecycle(sim: Sim, gateway: Gateway) -> None:
    stream = (await created_ids(gateway))["LIVEPUSH_STREAM"]
    for name in ("startLiveEvent", "stopLiveEvent", "cancelLiveEvent"):
        assert (await verb(gateway, name, stream))["errors"][0]["extensions"]["code"] == "UNSUPPORTED_BY_VENDOR"
    update = await gateway.query(
        f'mutation {{ updateLiveEvent(id: "{stream}", input: {{title: "x"}}) {{ event {{ id }} }} }}'
    )
    assert update["errors"][0]["extensions"]["code"] == "UNSUPPORTED_BY_VENDOR"
    deleted = await verb(gateway, "deleteLiveEvent", stream)
    assert deleted["data"]["deleteLiveEvent"]["event"]["status"] == "CANCELLED"
    again = await verb(gateway, "deleteLiveEvent", stream)
    assert again["errors"][0]["extensions"]["code"] == "NOT_FOUND"


async def test_refresh_reads_the_vendor_now(sim: Sim, gateway: Gateway) -> None:
    call = (await created_ids(gateway))["LOOP_CALL"]
    _, native_id = decode_global_id(call)
    await sim.control("POST", f"loop/calls/{native_id}/session-start")
    cached = await gateway.query(f'{{ liveEvent(id: "{call}") {{ status freshness {{ servedFrom }} }} }}')
    assert cached["data"]["liveEvent"] == {"status": "SCHEDULED", "freshness": {"servedFrom": "CACHE"}}
    refreshed = await verb(gateway, "refreshLiveEvent", call)
    assert refreshed["data"]["refreshLiveEvent"]["event"]["status"] == "LIVE"
    assert refreshed["data"]["refreshLiveEvent"]["event"]["freshness"]["servedFrom"] == "VENDOR"
    after = await gateway.query(f'{{ liveEvent(id: "{call}") {{ status isLive }} }}')
    assert after["data"]["liveEvent"] == {"status": "LIVE", "isLive": True}


async def test_update_needs_a_change(gateway: Gateway) -> None:
    body = await gateway.query('mutation { updateLiveEvent(id: "TE9PUF9TRVNTSU9OOng", input: {}) { event { id } } }')
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "retryable": False, "field": "input"}
