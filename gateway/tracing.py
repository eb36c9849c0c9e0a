"""Trace context across the gateway: the caller's W3C `traceparent` (or a new trace) and its request id go
with every vendor call; with the `otel` extra, OpenTelemetry spans for the operation, each vendor call
(opentelemetry-instrumentation-aiohttp-client) and each MongoDB command (-pymongo), in the caller's trace.

Without OpenTelemetry the gateway records no spans of its own, so it passes the caller's `traceparent`
on unchanged (W3C Trace Context allows a participant that does not trace to do so); a request that came
without one gets a new trace, so that a vendor's logs of one request still tie together.
"""

from __future__ import annotations

import contextvars
import re
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web

TRACEPARENT = "traceparent"
TRACESTATE = "tracestate"
REQUEST_ID_HEADER = "X-Request-Id"
# version 00 (or a later one, read as 00): trace id, parent id, flags; all lowercase hex.
_TRACEPARENT = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-[^\s]*)?$")
#: the longest tracestate passed on (W3C: 32 members of at most 256 characters, plus separators)
MAX_TRACESTATE = 8192

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class TraceContext:
    traceparent: str
    tracestate: str | None = None

    @property
    def trace_id(self) -> str:
        return self.traceparent.split("-")[1]


#: the id of the request being served, for every log line written while serving it and every vendor call
request_id_var: contextvars.ContextVar[str | None] = contextvars.ContextVar("request_id", default=None)


class RequestTrace:
    """The trace of one request, read from its headers when a vendor call first needs it: most requests
    (answers given again) call no vendor, and a new trace costs two reads of the system's random source."""

    __slots__ = ("_context", "_headers")

    def __init__(self, headers: Mapping[str, str]) -> None:
        self._headers = headers
        self._context: TraceContext | None = None

    @property
    def context(self) -> TraceContext:
        if self._context is None:
            self._context = trace_from(self._headers)
        return self._context


#: the trace of the request being served, shared by everything that serves it
trace_context_var: contextvars.ContextVar[RequestTrace | None] = contextvars.ContextVar("trace_context", default=None)


def new_trace() -> TraceContext:
    return TraceContext(f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01")


def trace_from(headers: Mapping[str, str]) -> TraceContext:
    """The caller's trace when its `traceparent` is valid, else a new one (a bad header is not an error)."""
    value = headers.get(TRACEPARENT, "").strip().lower()
    match = _TRACEPARENT.match(value)
    if match is None:
        return new_trace()
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest) or set(trace_id) == {"0"} or set(parent_id) == {"0"}:
        return new_trace()
    tracestate = headers.get(TRACESTATE)
    if tracestate is not None and len(tracestate) > MAX_TRACESTATE:
        tracestate = None
    # A later version is read as version 00, as the specification asks.
    return TraceContext(f"00-{trace_id}-{parent_id}-{flags}", tracestate)


def vendor_headers() -> dict[str, str]:
    """What a vendor call carries of the request it serves: its trace and its request id. A call made for
    no request (the refresher, the reconciler) starts a trace of its own. With OpenTelemetry on, the
    aiohttp instrumentation replaces `traceparent` with the vendor call's own span."""
    request_trace = trace_context_var.get()
    context = request_trace.context if request_trace is not None else new_trace()
    headers = {TRACEPARENT: context.traceparent}
    if context.tracestate:
        headers[TRACESTATE] = context.tracestate
    request_id = request_id_var.get()
    if request_id is not None:
        headers[REQUEST_ID_HEADER] = request_id
    return headers


def trace_middleware(otel_enabled: bool) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Reads the caller's trace; with OpenTelemetry on, records the request as a span of it."""

    @web.middleware
    async def trace(request: web.Request, handler: Handler) -> web.StreamResponse:
        trace_context_var.set(RequestTrace(request.headers))
        if not otel_enabled:
            return await handler(request)
        from opentelemetry import propagate, trace  # the otel extra; checked at start by `check_tracing`

        # A span for the whole request, the caller's span its parent: what runs before the operation (the
        # credentials, the rate, a persisted document) is in the trace too.
        route = request.match_info.route.resource
        name = f"{request.method} {route.canonical if route is not None else request.path}"
        tracer = trace.get_tracer("gateway.http")
        with tracer.start_as_current_span(
            name,
            context=propagate.extract(request.headers),
            kind=trace.SpanKind.SERVER,
            attributes={"http.request.method": request.method, "url.path": request.path},
        ) as span:
            response = await handler(request)
            span.set_attribute("http.response.status_code", response.status)
            return response

    return trace


def check_tracing(otel_enabled: bool) -> None:
    """Fails at start, in one line, when tracing is asked for without the packages that do it."""
    if not otel_enabled:
        return
    try:
        import opentelemetry.instrumentation.aiohttp_client
        import opentelemetry.instrumentation.pymongo
        import opentelemetry.propagate  # noqa: F401
    except ImportError as exc:
        raise RuntimeError("LIVE_GATEWAY_OTEL_ENABLED needs the otel extra: pip install 'live-gateway[otel]'") from exc


def client_trace_configs(otel_enabled: bool) -> list[Any]:
    """A span for each vendor call, with the call's own `traceparent` sent to the vendor."""
    if not otel_enabled:
        return []
    from opentelemetry.instrumentation.aiohttp_client import create_trace_config

    return [create_trace_config()]


def mongo_event_listeners(otel_enabled: bool) -> list[Any]:
    """A span for each MongoDB command, under the span of whatever sent it."""
    if not otel_enabled:
        return []
    from opentelemetry import trace
    from opentelemetry.instrumentation.pymongo import CommandTracer

    return [CommandTracer(trace.get_tracer("gateway.store"))]
