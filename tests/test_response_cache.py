"""The response cache and HTTP caching: an answer given again executes nothing and asks nothing, says
what executing would say, and is dropped on every replica when the change feed tells of a change to what
it holds; GET answers carry Cache-Control and a strong ETag; large answers are compressed."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable
from datetime import datetime
from typing import Any

from pymongo import monitoring

from gateway.ids import encode_global_id
from gateway.model import Source
from gateway.response_cache import Reads, ResponseCache, document_shape
from gateway.settings import ResponseCacheSettings, Role
from tests.conftest import SIM_TOKEN, CommandCounter, Sim
from tests.gateway_harness import Gateway, auth_header
from tests.test_observability import scrape, total
from tests.test_read_path import reset_counts, seed

ONE = """query One($id: ID!) {
  liveEvent(id: $id) { id title status freshness { fetchedAt ageSeconds stale servedFrom } }
}"""
PAGE = "query Page { liveEvents(first: 5) { totalCount edges { node { id title } } } }"


async def ask(gw: Gateway, query: str, variables: dict[str, Any] | None = None) -> tuple[str | None, dict[str, Any]]:
    body = {"query": query, "variables": variables or {}}
    async with gw.http.post(f"{gw.url}/graphql", json=body, headers=auth_header(Role.VIEWER)) as resp:
        return resp.headers.get("X-Cache"), await resp.json()


async def executions(gw: Gateway) -> float:
    return total(await scrape(gw), "live_gateway_graphql_requests_total")


def streamloop_id(ids: dict[Source, list[str]], n: int = 0) -> str:
    return encode_global_id(Source.STREAMLOOP_STREAM, ids[Source.STREAMLOOP_STREAM][n])


async def test_a_cached_answer_executes_nothing_and_asks_nothing_and_says_what_executing_would(
    sim: Sim, make_gateway: Callable[..., Any]
) -> None:
    ids = await seed(sim, 2)
    one = streamloop_id(ids)
    database = f"test_responses_{uuid.uuid4().hex[:8]}"
    listener = CommandCounter(database, "events")  # (the change feed is read meanwhile, as always)
    monitoring.register(listener)
    async with make_gateway(mongodb_database=database, read_memo_ttl=0.0, changes_poll_interval=0.05) as gw:
        cold_status, cold = await ask(gw, ONE, {"id": one})
        assert cold["data"]["liveEvent"]["freshness"]["servedFrom"] == "VENDOR"
        await gw.services.store.events.settled()
        # An answer read from the vendor is not kept: its own write-back is a change to what it holds.
        assert cold_status == "MISS" and len(gw.services.responses) == 0
        await asyncio.sleep(0.3)  # the change feed has told of that write-back too
        warm_status, warm = await ask(gw, ONE, {"id": one})
        assert warm_status == "MISS" and len(gw.services.responses) == 1
        await reset_counts(sim)
        listener.commands.clear()
        ran = await executions(gw)
        await asyncio.sleep(0.2)
        hit_status, hit = await ask(gw, ONE, {"id": one})
        assert hit_status == "HIT"
        assert await sim.vendor_requests() == 0
        assert listener.commands == {}
        assert await executions(gw) == ran  # nothing executed (the scrape itself is no operation)
        # What executing now would say: the same event, read from the cache, older by the time since.
        freshness = hit["data"]["liveEvent"].pop("freshness")
        expected = warm["data"]["liveEvent"].pop("freshness")
        assert hit == warm
        assert freshness["servedFrom"] == "CACHE" and freshness["stale"] is False
        assert freshness["fetchedAt"] == expected["fetchedAt"]
        fetched_at = datetime.fromisoformat(freshness["fetchedAt"]).timestamp()
        assert freshness["ageSeconds"] >= expected["ageSeconds"] + 0.2
        assert abs(freshness["ageSeconds"] - (time.time() - fetched_at)) < 0.1
        # In the same microseconds as executing gives it (a time between two datetimes).
        assert freshness["ageSeconds"] == round(freshness["ageSeconds"], 6)
        # Other variables, another operation: their own entries.
        assert (await ask(gw, ONE, {"id": streamloop_id(ids, 1)}))[0] == "MISS"


async def test_a_change_through_the_vendor_and_another_replica_drops_the_entries_holding_it_and_no_others(
    sim: Sim, make_gateway: Callable[..., Any]
) -> None:
    ids = await seed(sim, 6)
    database = f"test_responses_{uuid.uuid4().hex[:8]}"
    async with (
        make_gateway(mongodb_database=database, changes_poll_interval=0.05) as gw,
        make_gateway(mongodb_database=database, changes_poll_interval=0.05) as other,
    ):
        # Two streams the vendor lets change (one on air does not).
        streams = []
        for n in range(6):
            _, body = await ask(gw, ONE, {"id": streamloop_id(ids, n)})
            if body["data"]["liveEvent"]["status"] in ("DRAFT", "SCHEDULED"):
                streams.append(n)
        changed, untouched = (streamloop_id(ids, n) for n in streams[:2])
        await gw.services.store.events.settled()
        await asyncio.sleep(0.3)  # the cold reads' own changes have come back through the feed
        for event in (changed, untouched):
            await ask(gw, ONE, {"id": event})
            assert (await ask(gw, ONE, {"id": event}))[0] == "HIT"
        assert len(gw.services.responses) == 2, streams
        native = ids[Source.STREAMLOOP_STREAM][streams[0]]
        async with sim.http.patch(
            f"{sim.streamloop_url}/streams/{native}",
            json={"name": "Renamed at the vendor"},
            headers={"Authorization": f"Bearer {SIM_TOKEN}"},
        ) as resp:
            assert resp.status == 200, await resp.text()
        # The other replica learns of it (a refresh) and writes it: the change feed tells every replica.
        refreshed = await other.query(
            "mutation($id: ID!) { refreshLiveEvent(id: $id) { event { title } } }", {"id": changed}
        )
        assert refreshed["data"]["refreshLiveEvent"]["event"]["title"] == "Renamed at the vendor"
        async with asyncio.timeout(5):
            while len(gw.services.responses) == 2:  # noqa: ASYNC110 (another replica's write, through MongoDB)
                await asyncio.sleep(0.02)
        status, body = await ask(gw, ONE, {"id": changed})
        assert status == "MISS" and body["data"]["liveEvent"]["title"] == "Renamed at the vendor"
        assert (await ask(gw, ONE, {"id": untouched}))[0] == "HIT"


async def test_a_listing_is_dropped_on_a_change_to_its_sources_and_errors_are_never_kept(
    sim: Sim, make_gateway: Callable[..., Any]
) -> None:
    ids = await seed(sim, 3)
    async with make_gateway(changes_poll_interval=0.05) as gw:
        await ask(gw, PAGE)
        await gw.services.store.events.settled()
        await asyncio.sleep(0.3)
        await ask(gw, PAGE)
        assert (await ask(gw, PAGE))[0] == "HIT"
        stored = await gw.services.store.events.get_keys([(Source.LIVEPUSH_STREAM, ids[Source.LIVEPUSH_STREAM][0])])
        await gw.services.store.changes.publish([(next(iter(stored.values())).event, 99)])
        async with asyncio.timeout(5):
            while len(gw.services.responses):  # noqa: ASYNC110 (the change feed, through MongoDB)
                await asyncio.sleep(0.02)
        assert (await ask(gw, PAGE))[0] == "MISS"
        # An answer with an error is not kept.
        for _ in range(2):
            status, body = await ask(gw, ONE, {"id": "not-an-id"})
            assert body["errors"] and status == "MISS"
        # Nor one whose fields are not made of events and listings alone (vendors' health moves by itself).
        for _ in range(2):
            assert (await ask(gw, "{ vendors { vendor reachable } }"))[0] == "MISS"


def test_entries_live_no_longer_than_what_they_read_and_within_the_memory_budget() -> None:
    shape = document_shape("{ liveEvent(id: 1) { id } }", None)
    assert shape.cacheable
    cache = ResponseCache(ResponseCacheSettings(max_bytes=400))
    reads = Reads()
    reads.event((Source.LOOP_CALL, "a"), time.time() + 0.1)
    assert cache.put(cache.key("q", None, None, "viewer"), {"x": 1}, reads, shape, time.time(), 0) is not None
    assert cache.get(cache.key("q", None, None, "viewer")) is not None
    assert cache.get(cache.key("q", None, None, "operator")) is None  # the role is part of the key
    time.sleep(0.12)
    assert cache.get(cache.key("q", None, None, "viewer")) is None
    # Past the budget, the least recently used go first.
    long_lived = Reads()
    for n in range(10):
        cache.put(cache.key(f"q{n}", None, None, None), {"x": "y" * 50}, long_lived, shape, time.time(), 0)
    assert cache.bytes <= 400 and 0 < len(cache) < 10
    assert cache.get(cache.key("q9", None, None, None)) is not None
    assert cache.get(cache.key("q0", None, None, None)) is None
    # A mutation, a response key that means two fields, or @defer are never kept.
    assert not document_shape("mutation { refreshLiveEvent(id: 1) { event { id } } }", None).cacheable
    assert not document_shape("{ liveEvent(id: 1) { ageSeconds: title freshness { ageSeconds } } }", None).cacheable
    assert not document_shape("{ vendors { vendor } }", None).cacheable
    # An answer made across a change to what it read is not kept.
    generation = cache.generation
    cache.invalidate(Source.LOOP_CALL, "b")
    reads_b = Reads()
    reads_b.event((Source.LOOP_CALL, "b"), time.time() + 10)
    assert cache.put(cache.key("b", None, None, None), {}, reads_b, shape, time.time(), generation) is None
    # Emptied (the limits were reloaded): an answer begun before is not kept either, whatever it read.
    begun = cache.generation
    cache.clear()
    assert len(cache) == 0 and cache.bytes == 0
    assert cache.put(cache.key("c", None, None, None), {}, Reads(), shape, time.time(), begun) is None
    assert cache.put(cache.key("c", None, None, None), {}, Reads(), shape, time.time(), cache.generation) is not None


async def test_get_answers_carry_cache_control_and_a_strong_etag_and_if_none_match_is_304(
    sim: Sim, make_gateway: Callable[..., Any]
) -> None:
    await seed(sim, 2)
    async with make_gateway(changes_poll_interval=0.05) as gw:
        headers = auth_header(Role.VIEWER)
        url = f"{gw.url}/graphql"
        query = {"query": "query Total { liveEventStats { total byStatus { status count } } }"}
        async with gw.http.get(url, params=query, headers=headers) as resp:
            assert resp.status == 200
        await gw.services.store.events.settled()
        await asyncio.sleep(0.3)
        async with gw.http.get(url, params=query, headers=headers) as resp:
            assert resp.status == 200 and resp.headers["X-Cache"] == "MISS"
            assert resp.headers["Cache-Control"] == "public, max-age=0"  # counts over windows: a second at most
            etag = resp.headers["ETag"]
            assert etag.startswith('"') and not etag.startswith("W/")
            assert "Authorization" in resp.headers["Vary"]
            body = await resp.read()
        async with gw.http.get(url, params=query, headers={**headers, "If-None-Match": etag}) as resp:
            assert resp.status == 304 and resp.headers["ETag"] == etag
            assert await resp.read() == b""
        async with gw.http.get(url, params=query, headers={**headers, "If-None-Match": '"other"'}) as resp:
            assert resp.status == 200 and await resp.read() == body
        # An answer with an error is not for any cache; a POST says nothing of HTTP caching.
        async with gw.http.get(url, params={"query": "{ liveEvent(id: 1) { id } }"}, headers=headers) as resp:
            assert resp.headers["Cache-Control"] == "no-store" and "ETag" not in resp.headers
        async with gw.http.post(url, json=query, headers=headers) as resp:
            assert "Cache-Control" not in resp.headers


async def test_large_answers_are_gzipped_when_the_client_takes_gzip(sim: Sim, make_gateway: Callable[..., Any]) -> None:
    await seed(sim, 20)
    async with make_gateway(compress_min_bytes=2000) as gw:
        query = {"query": "{ liveEvents(first: 50) { edges { node { id title status } } } }"}
        url, headers = f"{gw.url}/graphql", auth_header(Role.VIEWER)
        async with gw.http.post(url, json=query, headers={**headers, "Accept-Encoding": "gzip"}) as resp:
            assert resp.headers["Content-Encoding"] == "gzip"
            assert "Accept-Encoding" in resp.headers["Vary"]
            assert len((await resp.json())["data"]["liveEvents"]["edges"]) == 50
        async with gw.http.post(url, json=query, headers={**headers, "Accept-Encoding": "identity"}) as resp:
            assert "Content-Encoding" not in resp.headers
        small = {"query": "{ liveEventStats { total } }"}
        async with gw.http.post(url, json=small, headers={**headers, "Accept-Encoding": "gzip"}) as resp:
            assert "Content-Encoding" not in resp.headers


async def test_identical_requests_meanwhile_wait_for_the_answer_being_made_rather_than_make_it_again(
    sim: Sim, make_gateway: Callable[..., Any]
) -> None:
    await seed(sim, 3)
    async with make_gateway(changes_poll_interval=0.05) as gw:
        await ask(gw, PAGE)  # lists the vendors into the index
        await gw.services.store.events.settled()
        await asyncio.sleep(0.3)
        gw.services.responses.invalidate(Source.LOOP_SESSION, "any")  # no entry: a cold start of the cache
        ran = await executions(gw)
        answers = await asyncio.gather(*(ask(gw, PAGE) for _ in range(20)))
        assert sorted(status for status, _ in answers) == ["MISS"] + ["SHARED"] * 19
        assert all(body == answers[0][1] for _, body in answers)
        assert await executions(gw) == ran + 1
