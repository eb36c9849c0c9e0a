"""A request's objects are freed by reference counting as its answer goes out, not left for the cyclic
garbage collector: counted in the objects of the gateway, Strawberry and graphql-core that a collection
finds unreachable after a batch of requests, with automatic collection off meanwhile. Left to the
collector, every request's context, loaders, vendor answers and aiohttp request waited in memory for it,
and under load its runs cost about as much CPU as a quarter of each request. A served gateway then runs
the collector rarely: counted in its own `python_gc_collections_total`."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from gateway.ids import encode_global_id
from gateway.model import Source
from gateway.settings import Settings
from tests.conftest import Sim
from tests.test_crash_recovery import gateway_env, gateway_process, post
from tests.test_read_path import seed
from tests.test_shared_execution import ONE, ask, cold

FOUR = """query Four($a: ID!, $b: ID!, $c: ID!, $d: ID!) {
  a: liveEvent(id: $a) { id title status }
  b: liveEvent(id: $b) { id title status }
  c: liveEvent(id: $c) { id title status }
  d: liveEvent(id: $d) { id title status }
}"""
PAGE = "query Page { liveEvents(first: 5) { totalCount edges { node { id title status } } } }"
#: the packages a request's objects come from
OURS = ("gateway", "strawberry", "graphql", "aiohttp", "aiodataloader")


@contextlib.contextmanager
def unreachable_objects() -> Iterator[Counter[str]]:
    """What becomes cyclic garbage in the block, by type (of the packages a request's objects come from)."""
    found: Counter[str] = Counter()
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        yield found
        gc.collect()
        found.update(
            f"{type(o).__module__}.{type(o).__qualname__}"
            for o in gc.garbage
            if type(o).__module__.split(".")[0] in OURS
        )
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()


def reads(ids: dict[Source, list[str]]) -> list[tuple[str, dict[str, Any]]]:
    one = {"id": encode_global_id(Source.STREAMLOOP_STREAM, ids[Source.STREAMLOOP_STREAM][0])}
    sources = (Source.LOOP_CALL, Source.LOOP_SESSION, Source.STREAMLOOP_STREAM, Source.LIVEPUSH_STREAM)
    four = {key: encode_global_id(source, ids[source][0]) for key, source in zip("abcd", sources, strict=True)}
    return [(ONE, one), (FOUR, four), (PAGE, {})]


async def test_cold_reads_and_a_listing_leave_no_cyclic_garbage(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    ids = await seed(sim, 3)
    async with make_gateway(**cold(settings_for)) as gw:
        queries = reads(ids)
        for query, variables in queries:  # the first of each builds what is kept across requests
            await ask(gw, query, variables)
        with unreachable_objects() as left:
            for _ in range(3):
                for query, variables in queries:
                    status, _, body = await ask(gw, query, variables)
                    assert status == 200 and "errors" not in body, body
        assert left == Counter()


async def test_answers_with_errors_leave_no_cyclic_garbage(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    ids = await seed(sim, 3)
    async with make_gateway(**cold(settings_for)) as gw:
        await sim.control("POST", "faults", {"streamloop": {"error_rate": 1.0, "error_status": 503}})
        queries = [*(reads(ids))[:2], ("query { liveEvent(id: 12) { nope } }", {})]
        for query, variables in queries:
            await ask(gw, query, variables)
        with unreachable_objects() as left:
            for _ in range(3):
                for query, variables in queries:
                    _, _, body = await ask(gw, query, variables)
                    assert body.get("errors"), body
        assert left == Counter()


async def collections(url: str) -> dict[str, float]:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/metrics") as resp:
        text = await resp.text()
    return {
        sample.labels["generation"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == "python_gc_collections_total"
    }


async def test_a_served_gateway_runs_the_collector_rarely_under_load(sim: Sim, mongo_uri: str) -> None:
    ids = await seed(sim, 3)
    env = gateway_env(sim, mongo_uri, f"test_gc_{uuid.uuid4().hex[:8]}")
    env.update({f"LIVE_GATEWAY_{vendor}__FRESH_FOR": "0" for vendor in ("LOOP", "STREAMLOOP", "LIVEPUSH")})
    async with gateway_process(env) as (_, url):
        queries = reads(ids)
        for query, variables in queries:
            await post(url, query, variables)
        before = await collections(url)
        for _ in range(20):  # 200 requests, 10 at a time
            batch = queries * 3 + queries[:1]
            answers = await asyncio.gather(*(post(url, query, variables) for query, variables in batch))
            assert all("errors" not in body for body in answers), answers
        after = await collections(url)
    # At CPython's default threshold: some forty runs of the youngest generation here.
    assert after["0"] - before["0"] <= 2, (before, after)
    assert after["2"] == before["2"]
