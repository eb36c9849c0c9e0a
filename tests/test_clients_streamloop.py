"""Streamloop client and adapter, round trips against the Streamloop simulator."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.errors import (
    IdempotencyKeyReused,
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
from gateway.settings import StreamloopSettings
from gateway.vendors import streamloop
from gateway.vendors.base import VendorClient
from gateway.vendors.registry import build_adapters
from gateway.vendors.streamloop import StreamloopStreamInput
from tests.conftest import SIM_TOKEN, Sim, later

MISSING_ID = "stream_01J0000000000000000000000Z"


@pytest.fixture
def client(clients: dict[Vendor, VendorClient]) -> streamloop.StreamloopClient:
    found = clients[Vendor.STREAMLOOP]
    assert isinstance(found, streamloop.StreamloopClient)
    return found


@pytest.fixture
def adapter(clients: dict[Vendor, VendorClient]) -> streamloop.StreamloopStreamAdapter:
    found = build_adapters(clients)[Source.STREAMLOOP_STREAM]
    assert isinstance(found, streamloop.StreamloopStreamAdapter)
    return found


def settings(sim: Sim, **overrides: Any) -> StreamloopSettings:
    values: dict[str, Any] = {"base_url": sim.streamloop_url, "token": SIM_TOKEN, "read_timeout": 2.0}
    values.update(overrides)
    return StreamloopSettings(**values)


async def new_stream(
    client: streamloop.StreamloopClient, name: str = "Lo-fi 24/7", destination_id: str | None = "dest_1"
) -> streamloop.StreamloopStream:
    body = StreamloopStreamInput(name=name, destination_id=destination_id)
    return (await client.create_stream(body)).stream


async def wait_for_state(
    client: streamloop.StreamloopClient, stream_id: str, state: str
) -> streamloop.StreamloopStream:
    async with asyncio.timeout(2.0):
        while True:
            stream = await client.get_stream(stream_id)
            if stream.state == state:
                return stream
            await asyncio.sleep(0.02)


def assert_error(error: VendorError, status: int | None, vendor_code: str | None) -> None:
    assert error.vendor is Vendor.STREAMLOOP
    assert error.status == status
    assert error.vendor_code == vendor_code
    ext = error.extensions()
    assert ext["vendor"] == "STREAMLOOP"
    if vendor_code:
        assert ext["vendorCode"] == vendor_code


# -- create, read, list --------------------------------------------------------------------------------


async def test_create_stream(client: streamloop.StreamloopClient) -> None:
    start = later(2)
    written = await client.create_stream(
        StreamloopStreamInput(
            name="Lo-fi 24/7",
            quality="q_1080p",
            framerate="f_30",
            playlist_ids=["pl_1", "pl_2"],
            stream_duration=0,
            schedule_start_at=start,
        )
    )
    assert written.replayed is False
    stream = written.stream
    assert stream.id.startswith("stream_")
    assert stream.name == "Lo-fi 24/7"
    assert stream.created_at.tzinfo is UTC
    assert stream.quality == "q_1080p"
    assert stream.framerate == "f_30"
    assert stream.playlist_ids == ["pl_1", "pl_2"]
    assert stream.schedule_start_at == start


async def test_create_stream_from_a_plain_mapping(client: streamloop.StreamloopClient) -> None:
    written = await client.create_stream({"name": "Raw", "streamDuration": 3600})
    assert written.stream.name == "Raw"
    assert written.stream.stream_duration == 3600


async def test_idempotent_create_replays(client: streamloop.StreamloopClient) -> None:
    key = str(uuid.uuid4())
    body = StreamloopStreamInput(name="Once")
    first = await client.create_stream(body, idempotency_key=key)
    again = await client.create_stream(body, idempotency_key=key)
    assert first.replayed is False
    assert again.replayed is True
    assert again.stream.id == first.stream.id


async def test_idempotency_key_reused_with_another_body(client: streamloop.StreamloopClient) -> None:
    key = str(uuid.uuid4())
    await client.create_stream(StreamloopStreamInput(name="One"), idempotency_key=key)
    with pytest.raises(IdempotencyKeyReused) as info:
        await client.create_stream(StreamloopStreamInput(name="Two"), idempotency_key=key)
    assert_error(info.value, 422, "IDEMPOTENCY_KEY_REUSED")
    assert info.value.code == "VENDOR_REJECTED"


async def test_get_stream(client: streamloop.StreamloopClient, adapter: streamloop.StreamloopStreamAdapter) -> None:
    created = await new_stream(client)
    fetched = await client.get_stream(created.id)
    assert fetched.id == created.id
    event = await adapter.fetch(created.id)
    assert event.source is Source.STREAMLOOP_STREAM
    assert event.title == "Lo-fi 24/7"
    assert event.status is Status.DRAFT
    assert event.vendor_status == "draft"
    assert event.is_live is False


async def test_get_missing_stream(
    client: streamloop.StreamloopClient, adapter: streamloop.StreamloopStreamAdapter
) -> None:
    with pytest.raises(VendorNotFound) as info:
        await client.get_stream(MISSING_ID)
    assert_error(info.value, 404, "NOT_FOUND")
    assert info.value.message != "Streamloop answered 404"  # the problem's detail or title
    assert await adapter.fetch_many([MISSING_ID]) == [None]


async def test_list_streams_pages(client: streamloop.StreamloopClient) -> None:
    made = {(await new_stream(client, f"s{i}")).id for i in range(5)}
    seen: list[str] = []
    cursor: str | None = None
    for _ in range(10):
        listing = await client.list_streams(limit=2, cursor=cursor)
        assert len(listing.data) <= 2
        seen += [s.id for s in listing.data]
        if not listing.page.has_more:
            break
        cursor = listing.page.next_cursor
        assert cursor
    assert made <= set(seen)
    assert len(seen) == len(set(seen))


async def test_adapter_lists_every_page(sim: Sim, adapter: streamloop.StreamloopStreamAdapter) -> None:
    seeded = await sim.control("POST", "seed", {"seed": 1, "count": 5})
    found: set[str] = set()
    cursor: str | None = None
    for _ in range(50):
        page = await adapter.list_page(cursor)
        found |= {e.native_id for e in page.events}
        cursor = page.next_cursor
        if cursor is None:
            break
    assert set(seeded["streamloop_stream"]) <= found


async def test_fetch_many(client: streamloop.StreamloopClient, adapter: streamloop.StreamloopStreamAdapter) -> None:
    a, b = await new_stream(client, "a"), await new_stream(client, "b")
    events = await adapter.fetch_many([b.id, MISSING_ID, a.id])
    assert [getattr(e, "native_id", e) for e in events] == [b.id, None, a.id]


# -- update, schedule, lifecycle -----------------------------------------------------------------------


async def test_update_stream(client: streamloop.StreamloopClient) -> None:
    created = await new_stream(client)
    key = str(uuid.uuid4())
    patch = StreamloopStreamInput(name="Renamed", quality="q_720p")
    written = await client.update_stream(created.id, patch, idempotency_key=key)
    assert written.replayed is False
    assert (written.stream.name, written.stream.quality) == ("Renamed", "q_720p")
    again = await client.update_stream(created.id, patch, idempotency_key=key)
    assert again.replayed is True


async def test_update_missing_stream(client: streamloop.StreamloopClient) -> None:
    with pytest.raises(VendorNotFound) as info:
        await client.update_stream(MISSING_ID, StreamloopStreamInput(name="x"))
    assert_error(info.value, 404, "NOT_FOUND")


async def test_schedule_stream(
    client: streamloop.StreamloopClient, adapter: streamloop.StreamloopStreamAdapter
) -> None:
    created = await new_stream(client)
    start, end = later(1), later(3)
    scheduled = await client.schedule_stream(created.id, start, end)
    assert scheduled.state == "scheduled"
    assert (scheduled.schedule_start_at, scheduled.schedule_end_at) == (start, end)
    event = await adapter.fetch(created.id)
    assert event.status is Status.SCHEDULED
    assert (event.scheduled_start, event.scheduled_end) == (start, end)


async def test_schedule_without_an_end(client: streamloop.StreamloopClient) -> None:
    created = await new_stream(client)
    scheduled = await client.schedule_stream(created.id, later(1))
    assert scheduled.schedule_end_at is None


async def test_start_goes_live_and_stop_ends(
    client: streamloop.StreamloopClient, adapter: streamloop.StreamloopStreamAdapter
) -> None:
    created = await new_stream(client)
    started = await adapter.start(created.id)
    assert started.vendor_status == "preparing"
    assert started.status is Status.STARTING
    assert started.is_live is True

    active = await wait_for_state(client, created.id, "active")
    assert active.started_at is not None

    stopping = await adapter.stop(created.id)
    assert stopping.status is Status.STOPPING
    assert stopping.is_live is False


async def test_start_without_a_destination_is_invalid(
    client: streamloop.StreamloopClient, adapter: streamloop.StreamloopStreamAdapter
) -> None:
    created = await new_stream(client, destination_id=None)
    started = await adapter.start(created.id)
    assert (started.vendor_status, started.status, started.is_live) == ("invalid", Status.DRAFT, False)


async def test_start_twice_is_an_illegal_transition(client: streamloop.StreamloopClient) -> None:
    created = await new_stream(client)
    await client.start_stream(created.id)
    with pytest.raises(VendorConflict) as info:
        await client.start_stream(created.id)
    assert_error(info.value, 409, "STREAM_ILLEGAL_TRANSITION")
    assert info.value.code == "VENDOR_REJECTED"


async def test_update_while_live_is_a_conflict(client: streamloop.StreamloopClient) -> None:
    created = await new_stream(client)
    await client.start_stream(created.id)
    await wait_for_state(client, created.id, "active")
    with pytest.raises(VendorConflict) as info:
        await client.update_stream(created.id, StreamloopStreamInput(quality="q_2160p"))
    assert_error(info.value, 409, "IMMUTABLE_WHILE_LIVE")


async def test_stop_from_draft_is_an_illegal_transition(client: streamloop.StreamloopClient) -> None:
    created = await new_stream(client)
    with pytest.raises(VendorConflict) as info:
        await client.stop_stream(created.id)
    assert_error(info.value, 409, "STREAM_ILLEGAL_TRANSITION")


@pytest.mark.parametrize(
    ("state", "status", "is_live"),
    [
        ("failing", Status.LIVE, True),
        ("failed", Status.FAILED, False),
        ("stopped", Status.ENDED, False),
        ("invalid", Status.DRAFT, False),
    ],
)
async def test_vendor_side_state_changes(
    sim: Sim,
    client: streamloop.StreamloopClient,
    adapter: streamloop.StreamloopStreamAdapter,
    state: str,
    status: Status,
    is_live: bool,
) -> None:
    created = await new_stream(client)
    await sim.control("POST", f"streamloop/streams/{created.id}/state", {"state": state})
    event = await adapter.fetch(created.id)
    assert (event.vendor_status, event.status, event.is_live) == (state, status, is_live)


async def test_delete_stream(client: streamloop.StreamloopClient, adapter: streamloop.StreamloopStreamAdapter) -> None:
    created = await new_stream(client)
    await client.delete_stream(created.id)
    with pytest.raises(VendorNotFound):
        await client.get_stream(created.id)
    other = await new_stream(client)
    assert await adapter.delete(other.id) is None
    with pytest.raises(VendorNotFound) as info:
        await adapter.delete(other.id)
    assert_error(info.value, 404, "NOT_FOUND")


async def test_streams_cannot_be_cancelled(adapter: streamloop.StreamloopStreamAdapter) -> None:
    with pytest.raises(UnsupportedByVendor):
        await adapter.cancel(MISSING_ID)


# -- auth ----------------------------------------------------------------------------------------------


async def test_api_key_and_workspace(sim: Sim, http_session: aiohttp.ClientSession) -> None:
    client = streamloop.StreamloopClient(
        http_session, settings(sim, token=None, api_key=SIM_TOKEN, workspace_id="ws_1")
    )
    assert client.auth_headers() == {"X-API-Key": SIM_TOKEN, "X-Workspace-Id": "ws_1"}
    assert (await new_stream(client)).id


async def test_api_key_without_workspace(sim: Sim, http_session: aiohttp.ClientSession) -> None:
    # The token makes the client configured; the API key is still preferred, and wants its workspace.
    client = streamloop.StreamloopClient(http_session, settings(sim, api_key=SIM_TOKEN))
    with pytest.raises(VendorNotConfigured) as info:
        await client.list_streams()
    assert_error(info.value, 400, "WORKSPACE_REQUIRED")
    assert info.value.code == "VENDOR_NOT_CONFIGURED"


async def test_bad_token(sim: Sim, http_session: aiohttp.ClientSession) -> None:
    client = streamloop.StreamloopClient(http_session, settings(sim, token="not-" + SIM_TOKEN))
    with pytest.raises(VendorAuthError) as info:
        await client.list_streams()
    assert_error(info.value, 401, "UNAUTHORIZED")


async def test_unauthorized_fault(sim: Sim, client: streamloop.StreamloopClient) -> None:
    await sim.control("POST", "faults", {"streamloop": {"unauthorized": True}})
    with pytest.raises(VendorAuthError) as info:
        await client.get_stream(MISSING_ID)
    assert_error(info.value, 401, "UNAUTHORIZED")


# -- errors --------------------------------------------------------------------------------------------


async def test_invalid_body_is_rejected(client: streamloop.StreamloopClient) -> None:
    with pytest.raises(VendorRejected) as info:
        await client.create_stream({"quality": "q_480p"})
    error = info.value
    assert type(error) is VendorRejected
    assert error.vendor is Vendor.STREAMLOOP
    assert error.status is not None and 400 <= error.status < 500
    assert error.vendor_code


async def test_rate_limited(sim: Sim, client: streamloop.StreamloopClient) -> None:
    await sim.control("POST", "faults", {"streamloop": {"rate_limited": 12}})
    with pytest.raises(VendorRateLimited) as info:
        await client.list_streams()
    assert_error(info.value, 429, "RATE_LIMITED")
    assert info.value.retry_after == 12
    assert info.value.code == "RATE_LIMITED"


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_unavailable(sim: Sim, client: streamloop.StreamloopClient, status: int) -> None:
    await sim.control("POST", "faults", {"streamloop": {"error_rate": 1.0, "error_status": status}})
    with pytest.raises(VendorUnavailable) as info:
        await client.list_streams()
    assert type(info.value) is VendorUnavailable
    assert info.value.status == status
    assert info.value.retryable is True


async def test_hanging_vendor_times_out(sim: Sim, http_session: aiohttp.ClientSession) -> None:
    client = streamloop.StreamloopClient(http_session, settings(sim, read_timeout=0.2))
    await sim.control("POST", "faults", {"streamloop": {"hang": True}})
    with pytest.raises(VendorTimeout) as info:
        await client.list_streams()
    assert info.value.vendor is Vendor.STREAMLOOP


async def test_malformed_json(sim: Sim, client: streamloop.StreamloopClient) -> None:
    await sim.control("POST", "faults", {"streamloop": {"malformed_json": True}})
    with pytest.raises(VendorProtocolError) as info:
        await client.list_streams()
    assert info.value.vendor is Vendor.STREAMLOOP
    assert info.value.code == "VENDOR_UNAVAILABLE"


@pytest.mark.parametrize(
    "overrides",
    [{"base_url": None}, {"token": None}, {"token": None, "api_key": SIM_TOKEN}],
    ids=["no-base-url", "no-token", "api-key-without-workspace"],
)
async def test_not_configured_sends_nothing(
    sim: Sim, http_session: aiohttp.ClientSession, overrides: dict[str, Any]
) -> None:
    client = streamloop.StreamloopClient(http_session, settings(sim, **overrides))
    before = await sim.vendor_requests()
    with pytest.raises(VendorNotConfigured) as info:
        await client.list_streams()
    assert info.value.vendor is Vendor.STREAMLOOP
    assert info.value.status is None
    assert await sim.vendor_requests() == before


def test_error_mapping(client: streamloop.StreamloopClient) -> None:
    def problem(status: int, code: str | None) -> dict[str, Any]:
        return {"type": "about:blank", "title": "T", "status": status, "detail": "D", "code": code}

    headers = CIMultiDictProxy(CIMultiDict({"Retry-After": "3"}))
    expected: list[tuple[int, str | None, type[VendorError]]] = [
        (404, "NOT_FOUND", VendorNotFound),
        (409, "STREAM_ILLEGAL_TRANSITION", VendorConflict),
        (409, "IMMUTABLE_WHILE_LIVE", VendorConflict),
        (422, "IDEMPOTENCY_KEY_REUSED", IdempotencyKeyReused),
        (429, "RATE_LIMITED", VendorRateLimited),
        (400, "WORKSPACE_REQUIRED", VendorNotConfigured),
        (401, "UNAUTHORIZED", VendorAuthError),
        (400, "VALIDATION_FAILED", VendorRejected),
        (412, None, VendorPreconditionFailed),
        (422, "SOMETHING_NEW", VendorRejected),
        (500, "INTERNAL_ERROR", VendorUnavailable),
        (503, None, VendorUnavailable),
    ]
    for status, code, cls in expected:
        error = client.error_for(status, problem(status, code), headers)
        assert type(error) is cls, (status, code)
        assert (error.status, error.vendor_code, error.message) == (status, code, "D")
    limited = client.error_for(429, problem(429, "RATE_LIMITED"), headers)
    assert isinstance(limited, VendorRateLimited)
    assert limited.retry_after == 3
    titled = client.error_for(404, {"title": "Not Found", "code": "NOT_FOUND"}, headers)
    assert titled.message == "Not Found"
    bare = client.error_for(502, None, headers)
    assert (type(bare), bare.message) == (VendorUnavailable, "Streamloop answered 502")


def test_badly_shaped_problem_keeps_the_status(client: streamloop.StreamloopClient) -> None:
    headers = CIMultiDictProxy(CIMultiDict({"Retry-After": "soon"}))
    error = client.error_for(409, {"code": 42, "detail": ["x"]}, headers)
    assert (type(error), error.status, error.vendor_code) == (VendorConflict, 409, None)
    limited = client.error_for(429, {"code": "RATE_LIMITED"}, headers)
    assert isinstance(limited, VendorRateLimited)
    assert limited.retry_after is None  # an HTTP-date or garbage is not a number of seconds
