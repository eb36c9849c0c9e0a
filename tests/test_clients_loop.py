"""Loop Live client and adapters, round trips against the Loop simulator."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.errors import (
    UnsupportedByVendor,
    VendorAuthError,
    VendorConflict,
    VendorError,
    VendorNotConfigured,
    VendorNotFound,
    VendorPreconditionFailed,
    VendorProtocolError,
    VendorRateLimited,
    VendorRejected,
    VendorTimeout,
    VendorUnavailable,
)
from gateway.model import Source, Status, Vendor
from gateway.settings import LoopSettings
from gateway.vendors import loop
from gateway.vendors.base import VendorClient
from gateway.vendors.registry import build_adapters
from tests.conftest import SIM_TOKEN, Sim, later

MISSING_ID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture
def client(clients: dict[Vendor, VendorClient]) -> loop.LoopClient:
    found = clients[Vendor.LOOP]
    assert isinstance(found, loop.LoopClient)
    return found


@pytest.fixture
def calls(clients: dict[Vendor, VendorClient]) -> loop.LoopCallAdapter:
    adapter = build_adapters(clients)[Source.LOOP_CALL]
    assert isinstance(adapter, loop.LoopCallAdapter)
    return adapter


@pytest.fixture
def sessions(clients: dict[Vendor, VendorClient]) -> loop.LoopSessionAdapter:
    adapter = build_adapters(clients)[Source.LOOP_SESSION]
    assert isinstance(adapter, loop.LoopSessionAdapter)
    return adapter


async def new_session(client: loop.LoopClient, **overrides: Any) -> loop.LoopSession:
    args: dict[str, Any] = {
        "host_id": "host_1",
        "brand_id": "brand_1",
        "title": "Office hours",
        "scheduled_at": later(),
        "max_participants": 10,
    }
    args.update(overrides)
    return await client.create_session(**args)


def assert_error(error: VendorError, status: int | None, vendor_code: str | None = None) -> None:
    assert error.vendor is Vendor.LOOP
    assert error.status == status
    if vendor_code is not None:
        assert error.vendor_code == vendor_code
    assert error.extensions()["vendor"] == "LOOP"


# -- calls ---------------------------------------------------------------------------------------------


async def test_create_call(client: loop.LoopClient) -> None:
    when = later(2)
    call = await client.create_call("user_1", "Morning check-in", scheduled_at=when, metadata={"room": "a"})
    assert call.host_user_id == "user_1"
    assert call.title == "Morning check-in"
    assert call.scheduled_at == when
    assert call.status == "scheduled"
    assert call.created_at.tzinfo is UTC


async def test_create_call_without_optional_fields(client: loop.LoopClient) -> None:
    call = await client.create_call("user_1", "Drop-in")
    assert call.scheduled_at is None


async def test_get_call(client: loop.LoopClient, calls: loop.LoopCallAdapter) -> None:
    created = await client.create_call("user_1", "Check-in")
    detail = await client.get_call(created.id)
    assert isinstance(detail, loop.LoopCallDetail)
    assert detail.id == created.id
    event = await calls.fetch(created.id)
    assert event.source is Source.LOOP_CALL
    assert event.status is Status.SCHEDULED
    assert event.is_live is False
    assert event.host_id == "user_1"


async def test_call_goes_live_then_stop_ends_it(sim: Sim, client: loop.LoopClient, calls: loop.LoopCallAdapter) -> None:
    created = await client.create_call("user_1", "Check-in")
    await sim.control("POST", f"loop/calls/{created.id}/session-start")
    live = await calls.fetch(created.id)
    assert live.status is Status.LIVE
    assert live.is_live is True
    assert live.extra["live"] is not None
    assert live.extra["live"]["is_live"] is True
    ended = await calls.stop(created.id)
    assert ended.status is Status.ENDED
    assert ended.vendor_status == "ended"
    assert ended.is_live is False


async def test_end_call(client: loop.LoopClient) -> None:
    created = await client.create_call("user_1", "Check-in")
    ended = await client.end_call(created.id)
    assert ended.id == created.id
    assert ended.status == "ended"


async def test_get_missing_call_is_not_found(client: loop.LoopClient, calls: loop.LoopCallAdapter) -> None:
    with pytest.raises(VendorNotFound) as info:
        await client.get_call(MISSING_ID)
    assert_error(info.value, 404)
    assert info.value.code == "NOT_FOUND"
    assert await calls.fetch_many([MISSING_ID]) == [None]


async def test_end_missing_call_is_not_found(client: loop.LoopClient) -> None:
    with pytest.raises(VendorNotFound) as info:
        await client.end_call(MISSING_ID)
    assert_error(info.value, 404)


async def test_calls_cannot_be_listed_started_or_cancelled(calls: loop.LoopCallAdapter) -> None:
    assert calls.can_list is False
    for verb in (calls.list_page(None), calls.start(MISSING_ID), calls.cancel(MISSING_ID)):
        with pytest.raises(UnsupportedByVendor) as info:
            await verb
        assert info.value.code == "UNSUPPORTED_BY_VENDOR"


# -- sessions ------------------------------------------------------------------------------------------


async def test_create_and_get_session(client: loop.LoopClient, sessions: loop.LoopSessionAdapter) -> None:
    when = later(3)
    created = await new_session(client, scheduled_at=when, kind="office_hours", metadata={"topic": "sleep"})
    assert created.kind == "office_hours"
    assert created.scheduled_at == when
    assert created.metadata == {"topic": "sleep"}
    assert created.registered_count == 0
    fetched = await client.get_session(created.id)
    assert fetched.id == created.id
    event = await sessions.fetch(created.id)
    assert event.status is Status.SCHEDULED
    assert event.extra["brand_id"] == "brand_1"
    assert event.extra["max_participants"] == 10


async def test_create_session_default_kind_is_live(client: loop.LoopClient) -> None:
    assert (await new_session(client)).kind == "live"


async def test_update_session(client: loop.LoopClient) -> None:
    created = await new_session(client)
    when = later(5)
    updated = await client.update_session(created.id, title="Renamed", scheduled_at=when, max_participants=3)
    assert (updated.title, updated.scheduled_at, updated.max_participants) == ("Renamed", when, 3)
    assert updated.brand_id == created.brand_id


async def test_update_missing_session_is_not_found(client: loop.LoopClient) -> None:
    with pytest.raises(VendorNotFound) as info:
        await client.update_session(MISSING_ID, title="x")
    assert_error(info.value, 404)


async def test_cancel_session(client: loop.LoopClient, sessions: loop.LoopSessionAdapter) -> None:
    created = await new_session(client)
    event = await sessions.cancel(created.id)
    assert event.status is Status.CANCELLED
    assert event.vendor_status == "cancelled"
    assert (await client.get_session(created.id)).status == "cancelled"


async def test_admin_update_session_back_to_scheduled(client: loop.LoopClient) -> None:
    created = await new_session(client)
    await client.admin_update_session(created.id, status="cancelled")
    restored = await client.admin_update_session(created.id, status="scheduled")
    assert restored.status == "scheduled"


async def test_list_sessions_pages_with_a_cursor(client: loop.LoopClient) -> None:
    brand = "brand_paging"
    made = {(await new_session(client, brand_id=brand)).id for _ in range(5)}
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        page = await client.list_sessions(brand_id=brand, limit=2, cursor=cursor)
        assert len(page.sessions) <= 2
        seen += [s.id for s in page.sessions]
        cursor = page.next_cursor
        if cursor is None:
            break
    assert sorted(seen) == sorted(made)


async def test_list_sessions_filters(client: loop.LoopClient) -> None:
    office = await new_session(client, brand_id="brand_f", host_id="host_f", kind="office_hours")
    await new_session(client, brand_id="brand_f", host_id="host_g", kind="live")
    cancelled = await new_session(client, brand_id="brand_f", host_id="host_h")
    await client.admin_update_session(cancelled.id, status="cancelled")

    by_host = await client.list_sessions(brand_id="brand_f", host_id="host_f")
    assert [s.id for s in by_host.sessions] == [office.id]
    by_kind = await client.list_sessions(brand_id="brand_f", kind="office_hours")
    assert [s.id for s in by_kind.sessions] == [office.id]
    by_status = await client.list_sessions(brand_id="brand_f", status="cancelled")
    assert [s.id for s in by_status.sessions] == [cancelled.id]
    upcoming = await client.list_sessions(brand_id="brand_f", upcoming=True)
    assert cancelled.id not in {s.id for s in upcoming.sessions}
    assert office.id in {s.id for s in upcoming.sessions}


async def test_session_adapter_walks_every_page(sim: Sim, sessions: loop.LoopSessionAdapter) -> None:
    seeded = await sim.control("POST", "seed", {"seed": 1, "count": 5})
    cursor: str | None = None
    found: set[str] = set()
    for _ in range(50):
        page = await sessions.list_page(cursor)
        assert all(e.source is Source.LOOP_SESSION for e in page.events)
        found |= {e.native_id for e in page.events}
        cursor = page.next_cursor
        if cursor is None:
            break
    assert set(seeded["loop_session"]) <= found


async def test_register(client: loop.LoopClient) -> None:
    created = await new_session(client)
    registration = await client.register(created.id, "guest", guest_email="a@example.com")
    assert isinstance(registration, loop.LoopRegistration)
    assert registration.role in (None, "guest")
    assert (await client.get_session(created.id)).registered_count == 1


async def test_register_twice_is_a_conflict(client: loop.LoopClient) -> None:
    created = await new_session(client)
    await client.register(created.id, "guest", guest_email="a@example.com")
    with pytest.raises(VendorConflict) as info:
        await client.register(created.id, "guest", guest_email="a@example.com")
    assert_error(info.value, 409)
    assert info.value.code == "VENDOR_REJECTED"


async def test_register_when_full_fails_its_precondition(client: loop.LoopClient) -> None:
    created = await new_session(client, max_participants=1)
    await client.register(created.id, "guest", guest_email="a@example.com")
    with pytest.raises(VendorPreconditionFailed) as info:
        await client.register(created.id, "guest", guest_email="b@example.com")
    assert_error(info.value, 412)


async def test_register_for_a_cancelled_session_fails_its_precondition(client: loop.LoopClient) -> None:
    created = await new_session(client)
    await client.admin_update_session(created.id, status="cancelled")
    with pytest.raises(VendorPreconditionFailed) as info:
        await client.register(created.id, "participant")
    assert_error(info.value, 412)


# -- errors --------------------------------------------------------------------------------------------


async def test_validation_error_is_rejected_with_loops_words(client: loop.LoopClient) -> None:
    with pytest.raises(VendorRejected) as info:
        await new_session(client, max_participants=0)
    error = info.value
    assert type(error) is VendorRejected
    assert_error(error, 400)
    assert error.vendor_code  # Loop's `error`
    assert error.message and error.message != "Loop answered 400"  # Loop's `message`
    assert error.code == "VENDOR_REJECTED"


async def test_bad_token_is_an_auth_error(http_session: aiohttp.ClientSession, sim: Sim) -> None:
    client = loop.LoopClient(http_session, LoopSettings(base_url=sim.loop_url, token="not-" + SIM_TOKEN))
    with pytest.raises(VendorAuthError) as info:
        await client.create_call("user_1", "x")
    assert_error(info.value, 401)
    assert info.value.code == "VENDOR_NOT_CONFIGURED"


async def test_unauthorized_fault(sim: Sim, client: loop.LoopClient) -> None:
    await sim.control("POST", "faults", {"loop": {"unauthorized": True}})
    with pytest.raises(VendorAuthError) as info:
        await client.get_call(MISSING_ID)
    assert_error(info.value, 401)


async def test_provider_failing_is_unavailable(sim: Sim, client: loop.LoopClient) -> None:
    await sim.control("POST", "faults", {"loop": {"provider": "failing"}})
    with pytest.raises(VendorUnavailable) as info:
        await client.create_call("user_1", "x")
    error = info.value
    assert type(error) is VendorUnavailable
    assert_error(error, 502)
    assert error.vendor_code
    assert error.retryable is True
    assert error.code == "VENDOR_UNAVAILABLE"


async def test_provider_not_configured_is_not_configured(sim: Sim, client: loop.LoopClient) -> None:
    await sim.control("POST", "faults", {"loop": {"provider": "not_configured"}})
    with pytest.raises(VendorNotConfigured) as info:
        await client.create_call("user_1", "x")
    error = info.value
    assert type(error) is VendorNotConfigured  # a 503 from Loop is not "unavailable"
    assert_error(error, 503)
    assert error.vendor_code
    assert error.retryable is False
    assert error.code == "VENDOR_NOT_CONFIGURED"


async def test_provider_not_configured_on_end(sim: Sim, client: loop.LoopClient) -> None:
    created = await client.create_call("user_1", "x")
    await sim.control("POST", "faults", {"loop": {"provider": "not_configured"}})
    with pytest.raises(VendorNotConfigured) as info:
        await client.end_call(created.id)
    assert_error(info.value, 503)


async def test_server_error_is_unavailable(sim: Sim, client: loop.LoopClient) -> None:
    await sim.control("POST", "faults", {"loop": {"error_rate": 1.0, "error_status": 500}})
    with pytest.raises(VendorUnavailable) as info:
        await client.get_call(MISSING_ID)
    assert_error(info.value, 500)


async def test_rate_limited(sim: Sim, client: loop.LoopClient) -> None:
    await sim.control("POST", "faults", {"loop": {"rate_limited": 7}})
    with pytest.raises(VendorRateLimited) as info:
        await client.get_call(MISSING_ID)
    assert_error(info.value, 429)
    assert info.value.retry_after == 7
    assert info.value.code == "RATE_LIMITED"
    assert info.value.extensions()["retryAfter"] == 7


async def test_hanging_vendor_times_out(http_session: aiohttp.ClientSession, sim: Sim) -> None:
    client = loop.LoopClient(http_session, LoopSettings(base_url=sim.loop_url, token=SIM_TOKEN, read_timeout=0.2))
    await sim.control("POST", "faults", {"loop": {"hang": True}})
    with pytest.raises(VendorTimeout) as info:
        await client.get_call(MISSING_ID)
    assert info.value.vendor is Vendor.LOOP
    assert info.value.code == "VENDOR_UNAVAILABLE"
    assert client.health.last_error is info.value


async def test_malformed_json_is_a_protocol_error(sim: Sim, client: loop.LoopClient) -> None:
    created = await client.create_call("user_1", "x")
    await sim.control("POST", "faults", {"loop": {"malformed_json": True}})
    with pytest.raises(VendorProtocolError) as info:
        await client.get_call(created.id)
    assert info.value.vendor is Vendor.LOOP
    assert info.value.status == 200


async def test_answer_outside_the_contract_is_a_protocol_error(client: loop.LoopClient) -> None:
    with pytest.raises(VendorProtocolError) as info:
        client.parse(loop.LoopCall, {"id": "x"})
    assert info.value.vendor is Vendor.LOOP


@pytest.mark.parametrize(
    "settings",
    [
        LoopSettings(base_url=None, token=SIM_TOKEN),
        LoopSettings(base_url="http://127.0.0.1:9", token=None),
    ],
    ids=["no-base-url", "no-token"],
)
async def test_not_configured_sends_nothing(
    sim: Sim, http_session: aiohttp.ClientSession, settings: LoopSettings
) -> None:
    await sim.control("POST", "stats/reset")
    client = loop.LoopClient(http_session, settings)
    assert client.configured is False
    with pytest.raises(VendorNotConfigured) as info:
        await client.get_call(MISSING_ID)
    assert info.value.vendor is Vendor.LOOP
    assert info.value.status is None
    assert await sim.vendor_requests() == 0


def test_error_mapping_without_a_body(client: loop.LoopClient) -> None:
    headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
    expected = {
        400: VendorRejected,
        401: VendorAuthError,
        403: VendorAuthError,
        404: VendorNotFound,
        409: VendorConflict,
        412: VendorPreconditionFailed,
        429: VendorRateLimited,
        500: VendorUnavailable,
        502: VendorUnavailable,
        503: VendorUnavailable,  # Loop being down; only its provider error says "not configured"
    }
    for status, cls in expected.items():
        error = client.error_for(status, None, headers)
        assert type(error) is cls, status
        assert error.status == status
        assert error.message == f"Loop answered {status}"


def test_a_503_is_not_configured_only_when_loop_says_its_provider_is_missing(client: loop.LoopClient) -> None:
    headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
    missing = {"error": "PROVIDER_NOT_CONFIGURED", "message": "the streaming provider is not configured"}
    assert type(client.error_for(503, missing, headers)) is VendorNotConfigured
    down = {"error": "service_unavailable", "message": "try later"}
    error = client.error_for(503, down, headers)
    assert type(error) is VendorUnavailable and error.retryable


def test_badly_shaped_error_body_keeps_the_status(client: loop.LoopClient) -> None:
    headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
    error = client.error_for(404, {"error": {"nested": True}, "message": 7}, headers)
    assert (type(error), error.status, error.vendor_code) == (VendorNotFound, 404, None)
    plain = client.error_for(409, ["not", "an", "object"], headers)
    assert type(plain) is VendorConflict
