"""What operators see: Prometheus metrics, JSON logs that carry the request id, optional tracing."""

from __future__ import annotations

import collections
import logging
import re
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from graphql import OperationDefinitionNode
from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, Histogram, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from pythonjsonlogger.json import JsonFormatter
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

from gateway.model import Source, Vendor
from gateway.tracing import request_id_var
from gateway.vendors.base import VendorClient
from gateway.vendors.resilience import CircuitState

_CIRCUIT_VALUE = {CircuitState.CLOSED: 0, CircuitState.HALF_OPEN: 1, CircuitState.OPEN: 2}
_OPERATION_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$")
#: distinct operation names kept as label values; the rest count as `other`, so a client cannot grow
#: the metrics without bound by inventing names
MAX_OPERATION_NAMES = 200
#: new names one caller may bring into the labels: one caller cannot take every slot
NAMES_PER_CALLER = MAX_OPERATION_NAMES // 10
#: seconds after which a name nobody sent gives its slot (and its series) up to a new one
NAME_IDLE_SECONDS = 3600.0
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(slots=True)
class _LabelledName:
    seen: float
    caller: str
    series: set[tuple[str, str]] = field(default_factory=set)


class Metrics:
    """The gateway's metrics, in a registry of its own (one per application, so tests and replicas in one
    process do not share counters)."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        # The process's CPU, memory and garbage collector runs (`process_*`, `python_gc_*`), as the default
        # registry would have them.
        ProcessCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.graphql_requests = Counter(
            "live_gateway_graphql_requests",
            "GraphQL operations, by operation name and outcome (ok, partial, error)",
            ["operation", "type", "outcome"],
            registry=self.registry,
        )
        self.graphql_seconds = Histogram(
            "live_gateway_graphql_seconds",
            "Time to execute a GraphQL operation",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.vendor_calls = Counter(
            "live_gateway_vendor_calls",
            "Calls that reached a vendor, by route template and status (or timeout, unreachable, malformed)",
            ["vendor", "method", "route", "status"],
            registry=self.registry,
        )
        self.vendor_calls_saved = Counter(
            "live_gateway_vendor_calls_saved",
            "Vendor reads not sent because an identical read was in flight, whose answer they shared",
            ["vendor", "method", "route"],
            registry=self.registry,
        )
        self.response_cache_lookups = Counter(
            "live_gateway_response_cache",
            "Query answers: hit (given again, nothing executed), shared (an identical execution in flight's), "
            "stored, not_kept (errors, stale or not cacheable)",
            ["result"],
            registry=self.registry,
        )
        self.vendor_seconds = Histogram(
            "live_gateway_vendor_call_seconds",
            "Time of one vendor call",
            ["vendor", "method", "route"],
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.cache_lookups = Counter(
            "live_gateway_cache_lookups",
            "Event reads from the MongoDB cache: hit (fresh), miss (asked the vendor), stale (served on failure)",
            ["source", "result"],
            registry=self.registry,
        )
        self.circuit = Gauge(
            "live_gateway_circuit_state",
            "A vendor's circuit breaker: 0 closed, 1 half-open, 2 open",
            ["vendor"],
            registry=self.registry,
        )
        self.rejected = Counter(
            "live_gateway_http_rejected",
            "Requests to /graphql refused before the schema: unauthenticated (401), rate_limited (429)",
            ["reason"],
            registry=self.registry,
        )
        self._response_cache_results: dict[str, Any] = {}
        #: the labelled children of the per-call series, by their labels
        self._labelled: dict[tuple[Any, ...], Any] = {}
        #: each labelled name: when it was last seen, the caller who brought it, its (type, outcome) series
        self._operation_names: dict[str, _LabelledName] = {}
        self._names_by_caller: collections.Counter[str] = collections.Counter()
        self._clock = time.monotonic

    def vendor_call(self, vendor: Vendor, method: str, route: str, status: str, seconds: float) -> None:
        # Several times per request: each labelled child is looked up once (the routes are templates, so
        # the labels are a small set).
        counted = self._labelled.get((vendor, method, route, status))
        if counted is None:
            counted = self._labelled[(vendor, method, route, status)] = self.vendor_calls.labels(
                vendor.value, method, route, status
            )
        timed = self._labelled.get((vendor, method, route))
        if timed is None:
            timed = self._labelled[(vendor, method, route)] = self.vendor_seconds.labels(vendor.value, method, route)
        counted.inc()
        timed.observe(seconds)

    def response_cache(self, result: str) -> None:
        # Once per answer given again, so the labelled child is looked up once per result.
        child = self._response_cache_results.get(result)
        if child is None:
            child = self._response_cache_results[result] = self.response_cache_lookups.labels(result)
        child.inc()

    def vendor_call_saved(self, vendor: Vendor, method: str, route: str) -> None:
        self.vendor_calls_saved.labels(vendor.value, method, route).inc()

    def cache(self, source: Source, result: str, count: int) -> None:
        if count:
            child = self._labelled.get((source, result))
            if child is None:
                child = self._labelled[(source, result)] = self.cache_lookups.labels(source.value, result)
            child.inc(count)

    def graphql(
        self, operation_name: str | None, operation_type: str, outcome: str, seconds: float, caller: str = ""
    ) -> None:
        label = self._operation_label(operation_name, caller)
        self.graphql_requests.labels(label, operation_type, outcome).inc()
        self.graphql_seconds.labels(operation_type).observe(seconds)
        if label in self._operation_names:
            self._operation_names[label].series.add((operation_type, outcome))

    def _operation_label(self, name: str | None, caller: str) -> str:
        if not name:
            return "anonymous"
        now = self._clock()
        known = self._operation_names.get(name)
        if known is not None:
            known.seen = now
            return name
        if not _OPERATION_NAME.match(name) or self._names_by_caller[caller] >= NAMES_PER_CALLER:
            return "other"
        if len(self._operation_names) >= MAX_OPERATION_NAMES and not self._forget_an_idle_name(now):
            return "other"
        self._operation_names[name] = _LabelledName(seen=now, caller=caller)
        self._names_by_caller[caller] += 1
        return name

    def _forget_an_idle_name(self, now: float) -> bool:
        name, oldest = min(self._operation_names.items(), key=lambda item: item[1].seen)
        if now - oldest.seen < NAME_IDLE_SECONDS:
            return False
        del self._operation_names[name]
        self._names_by_caller[oldest.caller] -= 1
        for operation_type, outcome in oldest.series:
            self.graphql_requests.remove(name, operation_type, outcome)
        return True

    def watch(self, clients: Mapping[Vendor, VendorClient]) -> None:
        for client in clients.values():
            client.observer = self.vendor_call
            client.saved_observer = self.vendor_call_saved

    def render(self, clients: Mapping[Vendor, VendorClient]) -> bytes:
        # A breaker turns half-open by the clock, not by an event, so its state is read at scrape time.
        for vendor, client in clients.items():
            self.circuit.labels(vendor.value).set(_CIRCUIT_VALUE[client.breaker.state])
        return generate_latest(self.registry)


class OperationMetrics(SchemaExtension):
    """Counts each GraphQL operation by name and outcome, and times it."""

    def on_operation(self) -> Iterator[None]:
        started = time.perf_counter()
        yield
        context = self.execution_context.context
        metrics: Metrics | None = getattr(getattr(context, "services", None), "metrics", None)
        if metrics is None:
            return
        result = self.execution_context.result
        # The first part of an answer in parts stands for it (a stream ends the operation after the last).
        result = getattr(result, "initial_result", result)
        if result is None or not result.errors:
            outcome = "ok"
        elif result.data is None:
            outcome = "error"
        else:
            outcome = "partial"
        try:
            operation_type = self.execution_context.operation_type.value
        except Exception:  # a document that did not parse has no operation type
            operation_type = "unknown"
        principal = getattr(context, "principal", None)
        metrics.graphql(
            _operation_name(self.execution_context),
            operation_type,
            outcome,
            time.perf_counter() - started,
            caller=principal.name if principal is not None else "",
        )


def _operation_name(execution_context: ExecutionContext) -> str | None:
    """The name of the operation that ran: a name the document does not define is no operation's, and is
    labelled `other` like every name beyond the bound, over HTTP and websockets alike."""
    name = execution_context.operation_name
    document = execution_context.graphql_document
    if not name:
        return None
    if document is not None and any(
        isinstance(definition, OperationDefinitionNode) and definition.name and definition.name.value == name
        for definition in document.definitions
    ):
        return name
    return "!"  # not a name, so counted as `other`


class RequestIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = request_id_var.get()
        return True


def log_handler(format: str, stream: Any = None) -> logging.Handler:
    """Log lines to `stream` (stderr): one JSON object each, with the request id, or text for a terminal."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RequestIdFilter())
    if format == "json":
        handler.setFormatter(
            JsonFormatter(
                "%(asctime)s %(levelname)s %(name)s %(message)s %(request_id)s",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
            )
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"))
    return handler


def configure_logging(format: str, level: str) -> None:
    root = logging.getLogger()
    handler = log_handler(format)
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    # aiohttp's access log repeats what the metrics count; keep it for debugging only.
    logging.getLogger("aiohttp.access").setLevel(logging.WARNING)


def tracing_extensions(enabled: bool) -> list[Any]:
    """Strawberry's OpenTelemetry extension when tracing is on; exporters come from the standard
    OTEL_* environment through the SDK the operator installs (`pip install live-gateway[otel]`)."""
    if not enabled:
        return []
    try:
        from strawberry.extensions.tracing import OpenTelemetryExtension
    except ImportError as exc:  # pragma: no cover - depends on the optional extra
        raise RuntimeError("LIVE_GATEWAY_OTEL_ENABLED needs the otel extra: pip install 'live-gateway[otel]'") from exc
    return [OpenTelemetryExtension]
