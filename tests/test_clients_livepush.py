"""Livepush client and adapter, round trips against the Livepush simulator."""

from __future__ import annotations

from datetime import UTC
from typing import Any

import aiohttp
import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from gateway.errors import (
    UnsupportedByVendor,
    VendorAuthError,
    VendorError,
    VendorNotConfigured,
    VendorNotFound,
    VendorProtocolError,
    VendorRateLimited,
    VendorRejected,
    VendorTimeout,
    VendorUnavailable,
)
from gateway.model import Event, Source, Status, Vendor
from gateway.settings import LivepushSettings
from gateway.vendors import livepush
from gateway.vendors.base import VendorClient
from gateway.vendors.registry import build_adapters
from tests.conftest import SIM_TOKEN, Sim

MISSING_ID = "st_doesnotexist0"


@pytest.fixture
def client(clients: dict[Vendor, VendorClient]) -> livepush.LivepushClient:
    found = clients[Vendor.LIVEPUSH]
    assert isinstance(found, livepush.LivepushClient)
    return found


@pytest.fixture
def adapter(clients: dict[Vendor, VendorClient]) -> livepush.LivepushStreamAdapter:
    found = build_adapters(clients)[Source.LIVEPUSH_STREAM]
    assert isinstance(found, livepush.LivepushStreamAdapter)
    return found


def settings(sim: Sim, **overrides: Any) -> LivepushSettings:
    values: dict[str, Any] = {"base_url": sim.livepush_url, "token": SIM_TOKEN, "read_timeout": 2.0}
    values.update(overrides)
    return LivepushSettings(**values)


def assert_error(error: VendorError, status: int | None) -> None:
    assert error.vendor is Vendor.LIVEPUSH
    assert error.status == status
    assert error.extensions()["vendor"] == "LIVEPUSH"


# -- streams -------------------------------------------------------------------------------------------


async def test_create_stream_zone_is_an_id(client: livepush.LivepushClient) -> None:
    created = await client.create_stream("simulcast", "Launch day")
    assert created.id.startswith("st_")
    assert created.chat_id and created.chat_id.startswith("mc_")
    assert created.embed_id and created.embed_id.startswith("em_")
    assert isinstance(created.zone, str)
    assert created.zone.startswith("zn_")
    assert created.metadata is not None
    assert (created.metadata.name, created.metadata.category) == ("Launch day", "simulcast")


async def test_get_stream_zone_is_an_object(client: livepush.LivepushClient) -> None:
    created = await client.create_stream("schedule", "Replays")
    fetched = await client.get_stream(created.id)
    assert isinstance(fetched.zone, livepush.LivepushZone)
    assert fetched.zone.id == created.zone
    assert fetched.chat_id == created.chat_id


async def test_fetch(client: livepush.LivepushClient, adapter: livepush.LivepushStreamAdapter) -> None:
    created = await client.create_stream("simulcast", "Launch day")
    event = await adapter.fetch(created.id)
    assert event.source is Source.LIVEPUSH_STREAM
    assert event.status is Status.DRAFT
    assert event.vendor_status is None
    assert event.is_live is False
    assert event.title == "Launch day"
    assert event.extra["zone"] == created.zone
    assert event.extra["chat_id"] == created.chat_id
    assert event.extra["category"] == "simulcast"


async def test_list_streams(client: livepush.LivepushClient) -> None:
    made = [await client.create_stream("simulcast", f"s{i}") for i in range(3)]
    listed = await client.list_streams()
    by_id = {s.id: s for s in listed}
    assert {s.id for s in made} <= set(by_id)
    sample = by_id[made[0].id]
    assert sample.zone_id == made[0].zone
    assert sample.chat_id is None  # the owner's list leaves these out
    assert sample.is_disabled is False


async def test_get_missing_stream(client: livepush.LivepushClient) -> None:
    with pytest.raises(VendorNotFound) as info:
        await client.get_stream(MISSING_ID)
    assert_error(info.value, 404)
    assert info.value.code == "NOT_FOUND"


async def test_delete_stream(client: livepush.LivepushClient, adapter: livepush.LivepushStreamAdapter) -> None:
    created = await client.create_stream("simulcast", "Short-lived")
    assert (await client.delete_stream(created.id)).success is True
    with pytest.raises(VendorNotFound):
        await client.get_stream(created.id)
    other = await client.create_stream("simulcast", "Also short-lived")
    assert await adapter.delete(other.id) is None
    with pytest.raises(VendorNotFound) as info:
        await adapter.delete(other.id)
    assert_error(info.value, 404)


async def test_fetch_many_is_one_request(
    sim: Sim, client: livepush.LivepushClient, adapter: livepush.LivepushStreamAdapter
) -> None:
    a = await client.create_stream("simulcast", "a")
    b = await client.create_stream("schedule", "b")
    before = await sim.vendor_requests("livepush")
    events = await adapter.fetch_many([b.id, MISSING_ID, a.id])
    assert await sim.vendor_requests("livepush") == before + 1
    assert [e.native_id if isinstance(e, Event) else e for e in events] == [b.id, None, a.id]
    first = events[0]
    assert isinstance(first, Event)
    assert (first.title, first.extra["zone"], first.extra["category"]) == ("b", b.zone, "schedule")


async def test_fetch_many_reports_a_failing_vendor_per_id(sim: Sim, adapter: livepush.LivepushStreamAdapter) -> None:
    await sim.control("POST", "faults", {"livepush": {"error_rate": 1.0, "error_status": 500}})
    events = await adapter.fetch_many(["st_a", "st_b"])
    assert len(events) == 2
    assert all(isinstance(e, VendorUnavailable) for e in events)


async def test_list_page_is_the_whole_list(sim: Sim, adapter: livepush.LivepushStreamAdapter) -> None:
    seeded = await sim.control("POST", "seed", {"seed": 1, "count": 5})
    page = await adapter.list_page(None)
    assert page.next_cursor is None
    assert set(seeded["livepush_stream"]) <= {e.native_id for e in page.events}


async def test_streams_cannot_be_started_stopped_or_cancelled(
    adapter: livepush.LivepushStreamAdapter,
) -> None:
    for verb in (adapter.start, adapter.stop, adapter.cancel):
        with pytest.raises(UnsupportedByVendor) as info:
            await verb(MISSING_ID)
        assert info.value.vendor is Vendor.LIVEPUSH


# -- account resources ---------------------------------------------------------------------------------


async def test_destinations(sim: Sim, client: livepush.LivepushClient) -> None:
    await sim.control("POST", "seed", {"seed": 1, "count": 2})
    destinations = await client.destinations()
    assert destinations
    assert all(d.id.startswith("pb_") for d in destinations)
    assert all(d.updated_at is None or d.updated_at.tzinfo is UTC for d in destinations)


async def test_recordings(sim: Sim, client: livepush.LivepushClient) -> None:
    await sim.control("POST", "seed", {"seed": 1, "count": 2})
    recordings = await client.recordings()
    assert recordings
    assert all(r.id and r.stream for r in recordings)


async def test_set_scheduler_playlist(client: livepush.LivepushClient) -> None:
    created = await client.create_stream("schedule", "Playlist")
    answer = await client.set_scheduler_playlist(created.id, ["vd_1", "vd_2"])
    assert isinstance(answer, livepush.LivepushSchedulerPlaylist)
    assert answer.videos in (None, ["vd_1", "vd_2"])


async def test_set_scheduler_playlist_on_a_missing_stream(client: livepush.LivepushClient) -> None:
    with pytest.raises(VendorNotFound) as info:
        await client.set_scheduler_playlist(MISSING_ID, ["vd_1"])
    assert_error(info.value, 404)


# -- errors --------------------------------------------------------------------------------------------


async def test_bad_token(sim: Sim, http_session: aiohttp.ClientSession) -> None:
    client = livepush.LivepushClient(http_session, settings(sim, token="not-" + SIM_TOKEN))
    with pytest.raises(VendorAuthError) as info:
        await client.list_streams()
    assert_error(info.value, 401)
    assert info.value.code == "VENDOR_NOT_CONFIGURED"


async def test_unauthorized_fault(sim: Sim, client: livepush.LivepushClient) -> None:
    await sim.control("POST", "faults", {"livepush": {"unauthorized": True}})
    with pytest.raises(VendorAuthError) as info:
        await client.destinations()
    assert_error(info.value, 401)


async def test_invalid_category_is_rejected(client: livepush.LivepushClient) -> None:
    with pytest.raises(VendorRejected) as info:
        await client.create_stream("webinar", "x")  # type: ignore[arg-type]
    assert info.value.vendor is Vendor.LIVEPUSH
    assert info.value.status is not None and 400 <= info.value.status < 500


async def test_rate_limited(sim: Sim, client: livepush.LivepushClient) -> None:
    await sim.control("POST", "faults", {"livepush": {"rate_limited": 5}})
    with pytest.raises(VendorRateLimited) as info:
        await client.list_streams()
    assert_error(info.value, 429)
    assert info.value.retry_after == 5


@pytest.mark.parametrize("status", [500, 502, 503])
async def test_server_errors_are_unavailable(sim: Sim, client: livepush.LivepushClient, status: int) -> None:
    await sim.control("POST", "faults", {"livepush": {"error_rate": 1.0, "error_status": status}})
    with pytest.raises(VendorUnavailable) as info:
        await client.list_streams()
    assert type(info.value) is VendorUnavailable
    assert_error(info.value, status)


async def test_hanging_vendor_times_out(sim: Sim, http_session: aiohttp.ClientSession) -> None:
    client = livepush.LivepushClient(http_session, settings(sim, read_timeout=0.2))
    await sim.control("POST", "faults", {"livepush": {"hang": True}})
    with pytest.raises(VendorTimeout) as info:
        await client.list_streams()
    assert info.value.vendor is Vendor.LIVEPUSH


async def test_malformed_json(sim: Sim, client: livepush.LivepushClient) -> None:
    await sim.control("POST", "faults", {"livepush": {"malformed_json": True}})
    with pytest.raises(VendorProtocolError) as info:
        await client.list_streams()
    assert info.value.vendor is Vendor.LIVEPUSH


@pytest.mark.parametrize("overrides", [{"base_url": None}, {"token": None}], ids=["no-base-url", "no-token"])
async def test_not_configured_sends_nothing(
    sim: Sim, http_session: aiohttp.ClientSession, overrides: dict[str, Any]
) -> None:
    client = livepush.LivepushClient(http_session, settings(sim, **overrides))
    before = await sim.vendor_requests()
    with pytest.raises(VendorNotConfigured) as info:
        await client.list_streams()
    assert info.value.vendor is Vendor.LIVEPUSH
    assert info.value.status is None
    assert await sim.vendor_requests() == before


def test_error_mapping(client: livepush.LivepushClient) -> None:
    headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict())
    with_message = client.error_for(404, {"message": "Stream not found"}, headers)
    assert (type(with_message), with_message.message) == (VendorNotFound, "Stream not found")
    bare = client.error_for(401, None, headers)
    assert (type(bare), bare.message) == (VendorAuthError, "Livepush answered 401")
    assert type(client.error_for(500, "oops", headers)) is VendorUnavailable
