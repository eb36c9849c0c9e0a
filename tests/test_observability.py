"""What operators see: /metrics, JSON log lines with the request id, INTERNAL errors masked and logged."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from gateway.ids import encode_global_id
from gateway.model import Source
from gateway.observability import (
    MAX_OPERATION_NAMES,
    NAME_IDLE_SECONDS,
    NAMES_PER_CALLER,
    Metrics,
    log_handler,
    request_id_var,
)
from gateway.settings import Role
from tests.conftest import Sim
from tests.gateway_harness import Gateway, token_for
from tests.test_read_path import reset_counts, seed
from tests.test_websocket_limits import socket


async def scrape(gw: Gateway) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    async with gw.http.get(f"{gw.url}/metrics") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].startswith("text/plain")
        text = await resp.text()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def total(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and all((k, v) in sample_labels for k, v in labels.items())
    )


async def seeded_stream(sim: Sim) -> str:
    ids = await seed(sim, 2)
    await reset_counts(sim)
    return encode_global_id(Source.STREAMLOOP_STREAM, ids[Source.STREAMLOOP_STREAM][0])


async def test_metrics_count_operations_vendor_calls_and_cache(gateway: Gateway, sim: Sim) -> None:
    event_id = await seeded_stream(sim)
    query = "query OneStream($id: ID!) { liveEvent(id: $id) { id title } }"
    for _ in range(2):  # cold, then warm from the cache
        body = await gateway.query(query, {"id": event_id})
        assert body["data"]["liveEvent"]["id"] == event_id
    await gateway.query("query Broken { liveEvent(id: 1) { nope } }")
    samples = await scrape(gateway)
    assert total(samples, "live_gateway_graphql_requests_total", operation="OneStream", outcome="ok") == 2
    assert total(samples, "live_gateway_graphql_requests_total", operation="Broken", outcome="error") == 1
    # The route is the vendor's path template, so ids never become label values.
    calls = total(
        samples,
        "live_gateway_vendor_calls_total",
        vendor="STREAMLOOP",
        method="GET",
        route="/streams/{id}",
        status="200",
    )
    assert calls == 1
    assert total(samples, "live_gateway_vendor_call_seconds_count", vendor="STREAMLOOP", route="/streams/{id}") == 1
    assert total(samples, "live_gateway_cache_lookups_total", source="STREAMLOOP_STREAM", result="miss") == 1
    assert total(samples, "live_gateway_cache_lookups_total", source="STREAMLOOP_STREAM", result="hit") == 1
    for vendor in ("LOOP", "STREAMLOOP", "LIVEPUSH"):
        assert samples[("live_gateway_circuit_state", (("vendor", vendor),))] == 0


async def test_vendor_failures_are_counted_by_outcome(gateway: Gateway, sim: Sim) -> None:
    event_id = await seeded_stream(sim)
    await sim.control("POST", "faults", {"streamloop": {"malformed_json": True}})
    body = await gateway.query("query($id: ID!) { liveEvent(id: $id) { id } }", {"id": event_id})
    assert body["errors"][0]["extensions"]["code"] == "VENDOR_UNAVAILABLE"
    samples = await scrape(gateway)
    assert total(samples, "live_gateway_vendor_calls_total", vendor="STREAMLOOP", status="malformed") == 1


def test_operation_names_cannot_grow_the_metrics_without_bound() -> None:
    metrics = Metrics()
    for i in range(MAX_OPERATION_NAMES + 50):
        metrics.graphql(f"Op{i}", "query", "ok", 0.001, caller=f"caller{i // NAMES_PER_CALLER}")
    metrics.graphql("not a name!", "query", "ok", 0.001)
    labels = {
        sample.labels["operation"]
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == "live_gateway_graphql_requests_total"
    }
    assert len(labels) == MAX_OPERATION_NAMES + 1
    assert "other" in labels


def test_a_name_nobody_sends_any_more_gives_its_slot_up() -> None:
    metrics = Metrics()
    now = [0.0]
    metrics._clock = lambda: now[0]
    for i in range(MAX_OPERATION_NAMES):
        metrics.graphql(f"Op{i}", "query", "ok", 0.001, caller=f"caller{i // NAMES_PER_CALLER}")
    metrics.graphql("Late", "query", "ok", 0.001, caller="late")
    now[0] = NAME_IDLE_SECONDS / 2
    metrics.graphql("Op0", "query", "ok", 0.001, caller="caller0")  # still in use
    now[0] = NAME_IDLE_SECONDS + 1
    metrics.graphql("Later", "query", "ok", 0.001, caller="late")
    labels = {
        sample.labels["operation"]
        for family in metrics.registry.collect()
        for sample in family.samples
        if sample.name == "live_gateway_graphql_requests_total"
    }
    assert "Late" not in labels and "Later" in labels
    assert "Op0" in labels and "Op1" not in labels  # the least recently seen went


def test_json_log_lines_carry_the_request_id() -> None:
    stream = io.StringIO()
    logger = logging.getLogger("gateway.test-json")
    logger.addHandler(log_handler("json", stream))
    logger.propagate = False
    try:
        token = request_id_var.set("req-123")
        logger.warning("vendor %s failed", "LOOP")
        request_id_var.reset(token)
    finally:
        logger.handlers.clear()
    line = json.loads(stream.getvalue())
    assert line["message"] == "vendor LOOP failed"
    assert line["request_id"] == "req-123"
    assert line["level"] == "WARNING"
    assert line["logger"] == "gateway.test-json"
    assert "time" in line


async def test_an_unexpected_error_is_masked_with_a_request_id_that_is_in_the_logs(
    gateway: Gateway, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("password=hunter2 in a stack trace")

    # Fault injection: no real part of the gateway fails on demand.
    monkeypatch.setattr(gateway.services.index, "ensure_fresh", broken)
    async with gateway.http.post(
        f"{gateway.url}/graphql", json={"query": "{ liveEvents { totalCount } }"}, headers={"X-Request-Id": "r-42"}
    ) as resp:
        body = await resp.json()
        assert resp.headers["X-Request-Id"] == "r-42"
    [error] = body["errors"]
    assert error["extensions"] == {"code": "INTERNAL", "requestId": "r-42"}
    assert "hunter2" not in json.dumps(body)
    logged = [r for r in caplog.records if r.name == "gateway.errors"]
    assert logged and "r-42" in logged[0].getMessage()
    assert "hunter2" in caplog.text  # the detail goes to the logs, for the operator


async def test_tracing_records_a_span_per_operation(make_gateway: Any, span_exporter: Any) -> None:
    async with make_gateway(otel_enabled=True) as gw:
        body = await gw.query("query Traced { vendors { vendor } }")
        assert "errors" not in body
    names = [span.name for span in span_exporter.get_finished_spans()]
    assert "GraphQL Query: Traced" in names


async def test_requests_refused_before_the_schema_are_counted_by_reason(gateway: Gateway) -> None:
    query = {"query": "{ vendors { vendor } }"}
    async with aiohttp.ClientSession() as anonymous, anonymous.post(f"{gateway.url}/graphql", json=query) as resp:
        assert resp.status == 401
    samples = await scrape(gateway)
    assert total(samples, "live_gateway_http_rejected_total", reason="unauthenticated") == 1
    assert total(samples, "live_gateway_graphql_requests_total") == 0


@pytest.mark.parametrize("transport", ["http", "websocket"])
async def test_junk_operation_names_from_one_caller_leave_the_label_slots_to_others(
    gateway: Gateway, transport: str
) -> None:
    junk = [f"query junk{i} {{ vendors {{ vendor }} }}" for i in range(MAX_OPERATION_NAMES + 10)]
    # names that are no operation of their document at all
    absent = [("query real { vendors { vendor } }", f"absent{i}") for i in range(20)]
    mallory = token_for(Role.VIEWER, "mallory")
    if transport == "http":
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {mallory}"}) as http:
            for query in junk:
                async with http.post(f"{gateway.url}/graphql", json={"query": query}) as resp:
                    assert resp.status == 200
            for query, name in absent:
                async with http.post(f"{gateway.url}/graphql", json={"query": query, "operationName": name}):
                    pass
    else:
        async with socket(gateway, mallory) as (ws, _):
            for query in junk:
                assert (await ws.run(query))["type"] == "next"
            for query, name in absent:
                await ws.run(query, name)
    assert "errors" not in await gateway.query("query Dashboard { vendors { vendor } }")
    samples = await scrape(gateway)
    labels = {dict(labels)["operation"] for name, labels in samples if name == "live_gateway_graphql_requests_total"}
    assert "Dashboard" in labels
    assert not any(label.startswith("absent") for label in labels)
    assert len({label for label in labels if label.startswith("junk")}) <= MAX_OPERATION_NAMES // 10
