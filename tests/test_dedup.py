"""In-flight deduplication: identical vendor reads at the same moment share one call, counted in the
simulators; writes, and reads with other credentials, are never shared."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from gateway.ids import encode_global_id
from gateway.model import Source, Vendor
from gateway.settings import Settings, StreamloopSettings
from gateway.vendors.base import VendorClient
from gateway.vendors.dedup import read_key
from gateway.vendors.registry import build_clients
from tests.conftest import SIM_TOKEN, Sim
from tests.gateway_harness import Gateway
from tests.test_observability import scrape, total
from tests.test_read_path import requests_by_route, reset_counts, seed

ONE_EVENT = "query($id: ID!) { liveEvent(id: $id) { id title status freshness { servedFrom } } }"


async def test_fifty_concurrent_cold_reads_of_one_event_make_one_vendor_call(sim: Sim, gateway: Gateway) -> None:
    ids = await seed(sim, 2)
    stream = encode_global_id(Source.STREAMLOOP_STREAM, ids[Source.STREAMLOOP_STREAM][0])
    await reset_counts(sim)
    # The vendor takes its time, so that every request is waiting on it at once.
    await sim.control("POST", "faults", {"streamloop": {"latency_ms": 300}})
    # Fifty different documents reading the same event (the response cache cannot share them).
    answers = await asyncio.gather(
        *(gateway.query(ONE_EVENT.replace("liveEvent(", f"e{n}: liveEvent("), {"id": stream}) for n in range(50))
    )
    assert all("errors" not in answer for answer in answers), answers[0]
    assert [answer["data"][f"e{n}"]["id"] for n, answer in enumerate(answers)] == [stream] * 50
    assert await requests_by_route(sim) == {("streamloop", "GET", "/streams/{id}"): 1}
    samples = await scrape(gateway)
    assert total(samples, "live_gateway_vendor_calls_saved_total", vendor="STREAMLOOP") == 49
    assert total(samples, "live_gateway_vendor_calls_total", vendor="STREAMLOOP") == 1


async def test_fifty_concurrent_identical_cold_queries_make_one_vendor_call(sim: Sim, gateway: Gateway) -> None:
    ids = await seed(sim, 2)
    stream = encode_global_id(Source.STREAMLOOP_STREAM, ids[Source.STREAMLOOP_STREAM][1])
    await reset_counts(sim)
    await sim.control("POST", "faults", {"streamloop": {"latency_ms": 300}})
    answers = await asyncio.gather(*(gateway.query(ONE_EVENT, {"id": stream}) for _ in range(50)))
    assert {answer["data"]["liveEvent"]["id"] for answer in answers} == {stream}
    # The identical ones wait for the first one's answer (the response cache), then read its write-back.
    assert await requests_by_route(sim) == {("streamloop", "GET", "/streams/{id}"): 1}


def streamloop_client(session: Any, sim: Sim, token: str = SIM_TOKEN) -> VendorClient:
    streamloop = StreamloopSettings(base_url=sim.streamloop_url, token=token, retries=0)
    return build_clients(session, Settings(_env_file=None, streamloop=streamloop))[Vendor.STREAMLOOP]  # type: ignore[call-arg]


async def test_reads_with_other_credentials_or_urls_are_not_shared(sim: Sim, http_session: Any) -> None:
    ids = await seed(sim, 2)
    first, second = ids[Source.STREAMLOOP_STREAM][:2]
    await reset_counts(sim)
    await sim.control("POST", "faults", {"streamloop": {"latency_ms": 200}})
    ours = streamloop_client(http_session, sim)
    theirs = streamloop_client(http_session, sim, token="another-token")
    assert read_key("GET", "u", None, {"Authorization": "a"}) != read_key("GET", "u", None, {"Authorization": "b"})
    assert read_key("GET", "u", {"a": 1}, {}) != read_key("GET", "u", {"a": 2}, {})
    results = await asyncio.gather(
        ours.request("GET", "/streams/{id}", path={"id": first}),
        ours.request("GET", "/streams/{id}", path={"id": first}),
        ours.request("GET", "/streams/{id}", path={"id": second}),
        theirs.request("GET", "/streams/{id}", path={"id": first}),
        return_exceptions=True,
    )
    assert [getattr(r, "status", None) for r in results[:3]] == [200, 200, 200]
    assert ours.in_flight.saved == 1
    # Two distinct ids with our token, and the first again with theirs (refused by the vendor, but sent).
    assert await requests_by_route(sim) == {("streamloop", "GET", "/streams/{id}"): 3}


async def test_writes_are_never_shared(sim: Sim, http_session: Any) -> None:
    ids = await seed(sim, 2)
    stream = ids[Source.STREAMLOOP_STREAM][0]
    await reset_counts(sim)
    await sim.control("POST", "faults", {"streamloop": {"latency_ms": 100}})
    client = streamloop_client(http_session, sim)
    body = {"title": "same title"}
    await asyncio.gather(
        *(client.request("PATCH", "/streams/{id}", path={"id": stream}, json=body) for _ in range(3)),
        return_exceptions=True,
    )
    assert client.in_flight.saved == 0
    assert await requests_by_route(sim) == {("streamloop", "PATCH", "/streams/{id}"): 3}


async def test_a_caller_that_gives_up_does_not_cancel_the_call_for_the_others(sim: Sim, http_session: Any) -> None:
    ids = await seed(sim, 2)
    stream = ids[Source.STREAMLOOP_STREAM][0]
    await reset_counts(sim)
    await sim.control("POST", "faults", {"streamloop": {"latency_ms": 200}})
    client = streamloop_client(http_session, sim)
    impatient = asyncio.ensure_future(client.request("GET", "/streams/{id}", path={"id": stream}))
    patient = asyncio.ensure_future(client.request("GET", "/streams/{id}", path={"id": stream}))
    await asyncio.sleep(0.05)
    impatient.cancel()
    with pytest.raises(asyncio.CancelledError):
        await impatient
    assert (await patient).status == 200
    assert len(client.in_flight) == 0
    assert await requests_by_route(sim) == {("streamloop", "GET", "/streams/{id}"): 1}
