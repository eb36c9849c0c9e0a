"""The index refresher: one replica at a time holds the lease and re-lists the vendors."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import aiohttp

from gateway.ids import encode_global_id
from gateway.index import REFRESHER_LEASE, EventIndex
from gateway.model import Source, utcnow
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.events import EventFilter
from gateway.vendors.registry import build_adapters, build_clients
from tests.conftest import Sim
from tests.gateway_harness import Gateway


async def test_only_the_lease_holder_refreshes(
    sim: Sim, settings_for: Callable[..., Settings], http_session: aiohttp.ClientSession, mongo_db: Any
) -> None:
    await sim.control("POST", "seed", {"seed": 5, "count": 4})
    store = Store(mongo_db)
    await store.ensure_indexes()
    adapters = build_adapters(build_clients(http_session, settings_for()))
    first, second = EventIndex(store, adapters, 30), EventIndex(store, adapters, 30)
    await sim.control("POST", "reset", {"stats_only": True})

    assert await first.refresh_round() is True
    assert await sim.vendor_requests() == 3  # one listing page per listable source
    for source in (Source.LOOP_SESSION, Source.STREAMLOOP_STREAM, Source.LIVEPUSH_STREAM):
        assert await store.events.count(EventFilter(sources=[source])) == 4

    await sim.control("POST", "reset", {"stats_only": True})
    assert await second.refresh_round() is False
    assert await sim.vendor_requests() == 0

    await store.leases.release(REFRESHER_LEASE, first.holder)
    assert await second.refresh_round() is True
    assert await store.leases.holder(REFRESHER_LEASE) == second.holder


async def test_a_vendor_deletion_shows_as_cancelled_after_the_next_listing(
    sim: Sim, settings_for: Callable[..., Settings], http_session: aiohttp.ClientSession, mongo_db: Any
) -> None:
    ids = await sim.control("POST", "seed", {"seed": 6, "count": 2})
    store = Store(mongo_db)
    await store.ensure_indexes()
    adapters = build_adapters(build_clients(http_session, settings_for()))
    index = EventIndex(store, adapters, 30)
    await index.refresh(Source.LIVEPUSH_STREAM)
    # As if listed a while ago: a listing spares what was fetched after it began.
    listed = await store.events.get_many(Source.LIVEPUSH_STREAM, ids["livepush_stream"])
    await store.events.put_many([c.event for c in listed.values()], fetched_at=utcnow() - timedelta(seconds=10))
    gone = ids["livepush_stream"][0]
    async with sim.http.delete(
        f"{sim.livepush_url}/streams/{gone}", headers={"Authorization": "Bearer sim-token"}
    ) as resp:
        assert resp.status == 200
    await index.refresh(Source.LIVEPUSH_STREAM)
    cached = await store.events.get_many(Source.LIVEPUSH_STREAM, ids["livepush_stream"])
    assert {native: c.event.status.value for native, c in cached.items()} == {
        gone: "CANCELLED",
        ids["livepush_stream"][1]: "DRAFT",
    }


async def test_the_refresher_follows_unfinished_loop_calls(
    sim: Sim, settings_for: Callable[..., Settings], http_session: aiohttp.ClientSession, mongo_db: Any
) -> None:
    store = Store(mongo_db)
    await store.ensure_indexes()
    adapters = build_adapters(build_clients(http_session, settings_for()))
    calls = adapters[Source.LOOP_CALL]
    body = {"host_user_id": "h", "title": "Call", "scheduled_at": None, "metadata": {}}
    running, finished = (
        await calls.create(dict(body), idempotency_key="a"),
        await calls.create(dict(body), idempotency_key="b"),
    )
    await sim.control("POST", f"loop/calls/{finished.native_id}/session-start")
    await sim.control("POST", f"loop/calls/{finished.native_id}/session-end")
    ended = await calls.fetch(finished.native_id)
    await store.events.put_many([running, ended], fetched_at=utcnow() - timedelta(seconds=1))
    await sim.control("POST", f"loop/calls/{running.native_id}/session-start")
    await sim.control("POST", "reset", {"stats_only": True})

    assert await EventIndex(store, adapters, 30).refresh_round() is True
    cached = await store.events.get_many(Source.LOOP_CALL, [running.native_id, finished.native_id])
    assert cached[running.native_id].event.status.value == "LIVE"
    stats = await sim.stats()
    call_reads = [r for r in stats["requests"] if r["route"] == "/v1/live/calls/{id}"]
    assert sum(r["count"] for r in call_reads) == 1  # the ended call is not asked about again


async def test_loop_calls_made_elsewhere_are_learned_by_id(
    sim: Sim, settings_for: Callable[..., Settings], http_session: aiohttp.ClientSession, mongo_db: Any
) -> None:
    ids = await sim.control("POST", "seed", {"counts": {"loop_call": 3}})
    store = Store(mongo_db)
    await store.ensure_indexes()
    index = EventIndex(store, build_adapters(build_clients(http_session, settings_for())), 30)
    calls = EventFilter(sources=[Source.LOOP_CALL])
    assert await store.events.count(calls) == 0
    await sim.control("POST", "reset", {"stats_only": True})

    unknown = "00000000-0000-4000-8000-000000000000"
    assert await index.learn(Source.LOOP_CALL, [*ids["loop_call"], unknown]) == 3
    assert await store.events.count(calls) == 3
    assert await sim.vendor_requests() == 4  # one read by id each, the unknown one included


async def test_a_loop_call_read_by_id_through_the_api_enters_listings_and_counts(sim: Sim, gateway: Gateway) -> None:
    """The README's way in for calls made outside the gateway: read them once with `nodes(ids:)`."""
    ids = await sim.control("POST", "seed", {"counts": {"loop_call": 3}})
    counts = (
        "{ liveEvents(filter: {sources: [LOOP_CALL]}) { totalCount } liveEventStats { bySource { source count } } }"
    )

    def loop_calls(data: dict[str, Any]) -> tuple[int, int]:
        by_source = {row["source"]: row["count"] for row in data["liveEventStats"]["bySource"]}
        return data["liveEvents"]["totalCount"], by_source["LOOP_CALL"]

    assert loop_calls((await gateway.query(counts))["data"]) == (0, 0)  # Loop cannot list calls
    global_ids = [encode_global_id(Source.LOOP_CALL, native_id) for native_id in ids["loop_call"]]
    read = await gateway.query("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": global_ids})
    assert [node["id"] for node in read["data"]["nodes"]] == global_ids
    assert loop_calls((await gateway.query(counts))["data"]) == (3, 3)
