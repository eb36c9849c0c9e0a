"""Traces end to end: the caller's W3C traceparent (or a new trace) and X-Request-Id reach every vendor
call; with OpenTelemetry on, one trace runs from the caller through the GraphQL operation to each vendor
call and MongoDB command."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from tests.conftest import Sim
from tests.gateway_harness import Gateway

CALLER_TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
CALLER_SPAN = "00f067aa0ba902b7"
TRACEPARENT = f"00-{CALLER_TRACE}-{CALLER_SPAN}-01"
CREATE = """mutation($input: CreateLiveEventInput!) {
  createLiveEvent(input: $input) { events { id } failures { code } }
}"""
TARGETS = {"streamloop": {"destinationId": "d"}, "livepush": {"category": "SIMULCAST"}}
W3C = re.compile(r"^00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}$")


async def create(gateway: Gateway, headers: dict[str, str]) -> None:
    body = await gateway.query(CREATE, {"input": {"title": "Traced", "targets": TARGETS}}, headers=headers)
    assert not body["data"]["createLiveEvent"]["failures"], body


async def received(sim: Sim) -> list[dict[str, str]]:
    """The trace headers of every request the vendors received since the last reset."""
    return [row["headers"] for row in (await sim.stats())["recent"]]


async def test_vendors_receive_the_callers_traceparent_and_request_id(gateway: Gateway, sim: Sim) -> None:
    await sim.control("POST", "stats/reset")
    headers = {"traceparent": TRACEPARENT, "tracestate": "vendor=abc", "X-Request-Id": "req-tie-1"}
    await create(gateway, headers)
    calls = await received(sim)
    assert len(calls) >= 2  # one call to each vendor at least
    assert calls == [{"traceparent": TRACEPARENT, "tracestate": "vendor=abc", "X-Request-Id": "req-tie-1"}] * len(calls)


async def test_a_request_without_a_trace_starts_one_for_all_its_vendor_calls(gateway: Gateway, sim: Sim) -> None:
    traces = []
    for bad in (None, "not-a-traceparent", f"00-{'0' * 32}-{CALLER_SPAN}-01"):
        await sim.control("POST", "stats/reset")
        await create(gateway, {"traceparent": bad} if bad else {})
        calls = await received(sim)
        ids = {W3C.match(call["traceparent"]).group(1) for call in calls}  # type: ignore[union-attr]
        assert len(ids) == 1  # one new trace for the whole request
        assert all(call["X-Request-Id"] for call in calls)
        traces.append(ids.pop())
    assert len(set(traces)) == 3 and CALLER_TRACE not in traces


async def test_one_trace_from_the_operation_to_the_vendor_call_and_the_mongodb_command(
    make_gateway: Callable[..., Any], sim: Sim, span_exporter: Any
) -> None:
    async with make_gateway(otel_enabled=True) as gateway:
        database = gateway.services.settings.mongodb_database
        await sim.control("POST", "stats/reset")
        span_exporter.clear()
        await create(gateway, {"traceparent": TRACEPARENT, "X-Request-Id": "req-tie-2"})
        calls = await received(sim)
    spans = [span for span in span_exporter.get_finished_spans() if span.context.trace_id == int(CALLER_TRACE, 16)]
    by_id = {span.context.span_id: span for span in spans}

    def ancestors(span: Any) -> list[str]:
        names = []
        while span.parent is not None and span.parent.span_id in by_id:
            span = by_id[span.parent.span_id]
            names.append(span.name)
        return names

    # The caller's span is the operation's parent.
    # The request's span is a child of the caller's, the operation's a child of the request's.
    [request] = [span for span in spans if span.parent is not None and span.parent.span_id == int(CALLER_SPAN, 16)]
    assert request.name == "POST /graphql"
    [operation] = [
        span for span in spans if span.name.startswith("GraphQL") and span.parent.span_id == request.context.span_id
    ]
    vendor_spans = [span for span in spans if span.name in ("GET", "POST", "PUT", "PATCH", "DELETE")]
    mongo_spans = [span for span in spans if span.name.startswith(f"{database}.")]
    assert len(vendor_spans) == len(calls) >= 2
    for span in vendor_spans:
        assert operation.name in ancestors(span), (span.name, ancestors(span))
    under_operation = {
        span.name.removeprefix(f"{database}.") for span in mongo_spans if operation.name in ancestors(span)
    }
    assert under_operation >= {"insert", "update"}  # the journal and the index, written by the mutation
    for span in mongo_spans:  # what ran before the operation (the caller's rate) is in the request's span
        assert request.name in ancestors(span), (span.name, ancestors(span))
    # Each vendor received the traceparent of its own call's span, in the caller's trace.
    sent = {W3C.match(call["traceparent"]).groups() for call in calls}  # type: ignore[union-attr]
    assert sent == {(CALLER_TRACE, f"{span.context.span_id:016x}") for span in vendor_spans}
    assert {call["X-Request-Id"] for call in calls} == {"req-tie-2"}


async def test_a_request_id_that_is_not_a_plain_token_is_replaced(gateway: Gateway, sim: Sim) -> None:
    await sim.control("POST", "stats/reset")
    await create(gateway, {"X-Request-Id": "x" * 500})
    calls = await received(sim)
    assert calls and all(re.fullmatch(r"[0-9a-f]{32}", call["X-Request-Id"]) for call in calls)
