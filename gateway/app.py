"""The aiohttp application: GraphQL view, health endpoints and an explicit lifecycle."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from typing import Any

import aiohttp
import orjson
import strawberry
from aiohttp import hdrs, web
from graphql import introspection_from_schema
from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL

from gateway import shutdown
from gateway.access import GRAPHQL_PATH, WEBSOCKET_PROTOCOLS, access_middleware
from gateway.auth import Authenticator
from gateway.background import background_task
from gateway.context import Services
from gateway.cors import cors_middleware, install_cors
from gateway.graphiql import add_graphiql_assets, graphiql_page
from gateway.graphql_http import GRAPHQL_VIEW, SCHEMA_PATH, GatewayView
from gateway.index import EventIndex
from gateway.jwks import jwks_lifecycle
from gateway.keys import AUTHENTICATOR, CALLER_SOCKETS, METRICS, RATE_LIMIT, REQUEST_ID, SERVICES, SETTINGS
from gateway.lifecycle import Lifecycle
from gateway.live import ChangeHub
from gateway.loaders import MissingIds
from gateway.media import JSON
from gateway.observability import Metrics, request_id_var
from gateway.operations import OperationRunner
from gateway.persisted import PersistedDocuments
from gateway.possible_types import POSSIBLE_TYPES_PATH, possible_types
from gateway.ratelimit import CallerRateLimit, CallerSockets
from gateway.response_cache import ResponseCache
from gateway.schema import build_schema
from gateway.server import deadline_middleware
from gateway.settings import ConfigurationError, Settings
from gateway.shared_limits import SharedLimit
from gateway.store import Store, connect
from gateway.store.changes import Change
from gateway.tracing import check_tracing, client_trace_configs, mongo_event_listeners, trace_middleware
from gateway.vendors.registry import build_adapters, build_clients
from gateway.vendors.resilience import CircuitState
from gateway.webhooks import receive_loop_webhook

log = logging.getLogger(__name__)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
SDL_MEDIA_TYPE = "application/graphql"


#: a caller's X-Request-Id that is used as given; any other gets an id of the gateway's making
REQUEST_ID_SHAPE = re.compile(r"[A-Za-z0-9._:/+=-]{1,128}")


@web.middleware
async def request_id_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # The caller's id is kept when it is a plain token: it goes into logs and to every vendor call.
    request_id = request.headers.get("X-Request-Id", "")
    if not REQUEST_ID_SHAPE.fullmatch(request_id):
        request_id = secrets.token_hex(16)  # as random as a uuid4, without making one
    request[REQUEST_ID] = request_id
    request_id_var.set(request_id)
    return await handler(request)


async def request_id_header(request: web.Request, response: web.StreamResponse) -> None:
    # Set as the headers go out, so that a stream (whose headers leave before its handler returns) has it too.
    request_id = request.get(REQUEST_ID)
    if request_id is not None:
        response.headers["X-Request-Id"] = request_id


async def mongodb_answers(store: Store, settings: Settings) -> None:
    """Fail the start in a few seconds, in one line, when MongoDB does not answer (the driver would wait 30 s
    on the first command and then raise its topology description)."""
    wait = settings.mongodb_connect_timeout
    try:
        await asyncio.wait_for(store.ping(), timeout=wait)
    except (TimeoutError, PyMongoError) as exc:
        where = redact_uri(settings.mongodb_uri or "")
        reason = "" if isinstance(exc, TimeoutError) else f" ({type(exc).__name__}: {driver_reason(exc)})"
        raise ConfigurationError(
            f"MongoDB at {where} did not answer within {wait:g} s{reason}; check LIVE_GATEWAY_MONGODB_URI "
            "(the wait is LIVE_GATEWAY_MONGODB_CONNECT_TIMEOUT)"
        ) from None


async def check_mongodb(settings: Settings) -> None:
    """`mongodb_answers` on a connection of its own, closed after."""
    mongo, store = open_store(settings)
    try:
        await mongodb_answers(store, settings)
    finally:
        await mongo.close()


def open_store(settings: Settings) -> tuple[AsyncMongoClient[dict[str, Any]], Store]:
    if not settings.mongodb_uri:
        raise ConfigurationError(
            "no MongoDB: set LIVE_GATEWAY_MONGODB_URI (or MONGODB_URI), or run `live-gateway demo`"
        )
    try:
        return connect(
            settings.mongodb_uri,
            settings.mongodb_database,
            settings.read_memo_ttl,
            settings.write_behind_delay,
            timeout=settings.mongodb_timeout,
            event_listeners=mongo_event_listeners(settings.otel_enabled),
        )
    except (PyMongoError, ValueError) as exc:  # a port that is not a number is a plain ValueError
        raise ConfigurationError(f"LIVE_GATEWAY_MONGODB_URI is not a MongoDB URI we can use: {exc}") from None


def driver_reason(exc: PyMongoError) -> str:
    """What went wrong with each server, without the driver's timeouts and topology description (which run
    to several hundred characters on one line and are in its own logs)."""
    text = str(exc).split(", Timeout: ", 1)[0]
    return re.sub(r" \(configured timeouts: [^)]*\)", "", text)


def redact_uri(uri: str) -> str:
    """The URI without its user and password."""
    return re.sub(r"//[^@/]*@", "//", uri)


async def services_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    mongo, store = open_store(settings)
    http = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=0, ttl_dns_cache=300),
        raise_for_status=False,
        trace_configs=client_trace_configs(settings.otel_enabled),
    )
    try:
        await mongodb_answers(store, settings)
        await store.ensure_indexes()
        clients = build_clients(http, settings)
        # Limits that protect what every replica shares hold across all of them, counted in MongoDB.
        if settings.limits.shared_rate_limit:
            app[RATE_LIMIT].share(store.windows)
        for client in clients.values():
            if client.settings.budget:
                client.budget = SharedLimit(store.windows, client.settings.budget)
        app[METRICS].watch(clients)
        adapters = build_adapters(clients)
        responses = ResponseCache(settings.response_cache)

        def forget(change: Change) -> None:
            # A change by any replica: this replica's reads of the index and its answers that hold the event
            # (or read its source's listing) are no longer to be given again, nor what it stored of the event.
            store.events.memo.invalidate()
            store.events.heard_of(change.event.source, change.event.native_id)
            responses.invalidate(change.event.source, change.event.native_id)

        store.events.on_write = responses.forget_event
        app[SERVICES] = Services(
            settings=settings,
            store=store,
            clients=clients,
            adapters=adapters,
            index=EventIndex(store, adapters, settings.index_refresh_interval),
            operations=OperationRunner(store, adapters, settings),
            lifecycle=Lifecycle(store, adapters),
            hub=ChangeHub(store.changes, settings.changes_poll_interval, on_change=forget),
            metrics=app[METRICS],
            documents=PersistedDocuments(store.documents, settings.documents),
            vendor_budget=CallerRateLimit(settings.limits.vendor_call_budget, "vendor calls"),
            missing=MissingIds(
                {source: getattr(settings, source.vendor.value.lower()).not_found_for for source in adapters}
            ),
            responses=responses,
        )
        yield
        await store.events.settled()
    finally:
        await store.health.close()
        await http.close()
        await mongo.close()


async def loop_webhook(request: web.Request) -> web.Response:
    return await receive_loop_webhook(request, request.app[SERVICES])


async def healthz(request: web.Request) -> web.Response:
    # The pid tells which worker answered when several share the port.
    return web.json_response({"status": "ok", "pid": os.getpid()})


async def readyz(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    health = services.store.health
    try:
        await asyncio.wait_for(services.store.ping(), timeout=services.settings.mongodb_timeout)
        mongodb = "ok"
        health.answered()
    except Exception as exc:
        mongodb = f"error: {type(exc).__name__}"
        health.failed(exc)
    vendors = {
        vendor.value: {"configured": client.configured, "circuit": client.breaker.state.value}
        for vendor, client in services.clients.items()
    }
    # One sick vendor does not make the gateway unready (its answers say so); all of them down does.
    ready = mongodb == "ok" and any(v["configured"] and v["circuit"] != CircuitState.OPEN for v in vendors.values())
    return web.json_response(
        {"status": "ready" if ready else "not ready", "mongodb": mongodb, "vendors": vendors},
        status=200 if ready else 503,
    )


async def prometheus_metrics(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    body = services.metrics.render(services.clients)
    return web.Response(body=body, headers={"Content-Type": services.metrics.content_type})


def schema_handler(schema: strawberry.Schema) -> Handler:
    """The schema's SDL (what `export-schema` writes); to `Accept: application/json`, the introspection result
    built from it, which GraphiQL reads when introspection is turned off. Credentials are needed as on /graphql."""
    sdl = schema.as_str() + "\n"
    introspection = orjson.dumps({"data": introspection_from_schema(schema._schema)})

    async def serve_schema(request: web.Request) -> web.Response:
        accept = request.headers.get(hdrs.ACCEPT, "")
        if JSON in accept and SDL_MEDIA_TYPE not in accept:
            return web.Response(body=introspection, content_type=JSON)
        return web.Response(text=sdl, content_type=SDL_MEDIA_TYPE)

    return serve_schema


def possible_types_handler(schema: strawberry.Schema) -> Handler:
    """The schema's `possibleTypes` for client caches, as JSON; credentials are needed as for the schema."""
    body = orjson.dumps(possible_types(schema._schema), option=orjson.OPT_INDENT_2)

    async def serve_possible_types(request: web.Request) -> web.Response:
        return web.Response(body=body, content_type=JSON)

    return serve_possible_types


async def jwks_ctx(app: web.Application) -> AsyncIterator[None]:
    async with jwks_lifecycle(app[AUTHENTICATOR].jwks):
        yield


def add_operator_routes(app: web.Application) -> None:
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", prometheus_metrics)


def create_ops_app(gateway: web.Application) -> web.Application:
    """The operators' listener (LIVE_GATEWAY_OPS_PORT): /metrics, /readyz and /healthz of `gateway`, which
    has started by the time this starts, and nothing else."""
    ops = web.Application()

    async def share_services(ops: web.Application) -> None:
        ops[SERVICES] = gateway[SERVICES]

    ops.on_startup.append(share_services)
    ops.router.add_get("/healthz", healthz)
    add_operator_routes(ops)
    return ops


def create_app(settings: Settings) -> web.Application:
    authenticator = Authenticator(settings.auth)
    authenticator.check_configured()
    check_tracing(settings.otel_enabled)
    metrics = Metrics()
    app = web.Application(
        middlewares=[
            request_id_middleware,
            deadline_middleware(settings.limits),
            trace_middleware(settings.otel_enabled),
            cors_middleware(),
            access_middleware(authenticator, metrics, frozenset({GRAPHQL_PATH, SCHEMA_PATH, POSSIBLE_TYPES_PATH})),
        ],
        client_max_size=settings.limits.max_body_bytes,
    )
    app.on_response_prepare.append(request_id_header)
    install_cors(app, settings.cors)
    app[SETTINGS] = settings
    app[AUTHENTICATOR] = authenticator
    app[METRICS] = metrics
    app[RATE_LIMIT] = CallerRateLimit(settings.limits.rate_limit)
    app[CALLER_SOCKETS] = CallerSockets(settings.limits.max_sockets_per_caller)
    shutdown.install(app)
    app.cleanup_ctx.append(jwks_ctx)
    app.cleanup_ctx.append(services_ctx)
    app.cleanup_ctx.append(
        background_task(
            "index-refresher",
            lambda app, stop: app[SERVICES].index.run_refresher(stop),
            enabled=lambda app: app[SETTINGS].refresher_enabled,
        )
    )
    # Takes over operations that a crashed replica left running, from start on.
    app.cleanup_ctx.append(
        background_task(
            "reconciler",
            lambda app, stop: app[SERVICES].operations.run_reconciler(stop, app[SETTINGS].reconcile_interval),
            enabled=lambda app: app[SETTINGS].reconciler_enabled,
        )
    )
    # Follows the change feed for this replica's subscribers.
    app.cleanup_ctx.append(background_task("change-hub", lambda app, stop: app[SERVICES].hub.run(stop)))
    schema = build_schema(settings)
    view = GatewayView(
        schema=schema,
        max_message_bytes=settings.limits.max_body_bytes,
        connection_init_wait_timeout=timedelta(seconds=settings.limits.connection_init_timeout),
        graphql_ide="graphiql" if settings.graphiql else None,
        allowed_origins=settings.cors.allow_origins,
        subscription_protocols=(*WEBSOCKET_PROTOCOLS, GRAPHQL_SSE_PROTOCOL),
        sse_heartbeat_interval=settings.sse_heartbeat_interval,
        graphiql_page=graphiql_page(
            settings.graphiql_headers, schema_url=None if settings.limits.introspection else SCHEMA_PATH
        ),
    )
    app[GRAPHQL_VIEW] = view
    app.router.add_route("*", GRAPHQL_PATH, view)
    app.router.add_get(SCHEMA_PATH, schema_handler(schema))
    app.router.add_get(POSSIBLE_TYPES_PATH, possible_types_handler(schema))
    if settings.graphiql:
        add_graphiql_assets(app)
    app.router.add_get("/healthz", healthz)
    if settings.ops_port is None:
        add_operator_routes(app)
    app.router.add_post("/webhooks/loop", loop_webhook)
    return app
