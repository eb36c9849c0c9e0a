"""The naive baseline: the gateway's read queries resolved straight from the vendors, with the gateway's own
vendor clients, adapters and GraphQL types, but without DataLoaders, the MongoDB cache or the index.

Each `liveEvent` and each id of `nodes` is one vendor read of its own (no batching, no de-duplication);
each `liveEvents` and `liveEventStats` reads every listing in full from the vendors, then sorts and cuts the
page, or counts, in memory. Nothing is cached, and persisted queries are not spoken.
The same query documents therefore run unchanged against it and against the gateway.

    .venv/bin/python -m bench.naive --port 8090    # vendor settings from LIVE_GATEWAY_* like the gateway
"""

from __future__ import annotations

import argparse
import asyncio
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import aiohttp
import orjson
import strawberry
from aiohttp import web
from strawberry.aiohttp.views import GraphQLView
from strawberry.types import Info

from gateway.errors import VendorNotFound
from gateway.ids import decode_global_id, encode_global_id
from gateway.model import Event, Source, Status, utcnow
from gateway.settings import Settings
from gateway.store.events import sort_start_of
from gateway.types.enums import ServedFrom
from gateway.types.events import (
    LiveEvent,
    LivepushStream,
    Loaded,
    LoopCall,
    LoopSession,
    Node,
    StreamloopStream,
    to_graphql,
)
from gateway.types.listing import LiveEventConnection, LiveEventEdge, LiveEventStats, PageInfo, SourceCount, StatusCount
from gateway.vendors.base import SourceAdapter
from gateway.vendors.registry import build_adapters, build_clients

ADAPTERS = web.AppKey("adapters", dict[Source, SourceAdapter])
DEFAULT_PAGE = 20


@dataclass(slots=True)
class NaiveContext:
    adapters: dict[Source, SourceAdapter]


NaiveInfo = Info[NaiveContext, None]


async def read_one(info: NaiveInfo, global_id: str) -> LiveEvent | None:
    source, native_id = decode_global_id(global_id)
    adapter = info.context.adapters.get(source)
    if adapter is None:
        return None
    try:
        event = await adapter.fetch(native_id)
    except VendorNotFound:
        return None
    now = utcnow()
    return to_graphql(Loaded(event, now, ServedFrom.VENDOR), now)


async def read_listing(adapter: SourceAdapter) -> list[Event]:
    events: list[Event] = []
    cursor: str | None = None
    while True:
        page = await adapter.list_page(cursor)
        events.extend(page.events)
        cursor = page.next_cursor
        if not cursor:
            return events


@strawberry.type
class Query:
    @strawberry.field
    async def live_event(self, info: NaiveInfo, id: strawberry.ID) -> LiveEvent | None:
        return await read_one(info, id)

    @strawberry.field
    async def node(self, info: NaiveInfo, id: strawberry.ID) -> Node | None:
        return await read_one(info, id)

    @strawberry.field
    async def nodes(self, info: NaiveInfo, ids: list[strawberry.ID]) -> list[Node | None]:
        return list(await asyncio.gather(*(read_one(info, i) for i in ids)))

    @strawberry.field
    async def live_event_stats(
        self, info: NaiveInfo, starting_within_seconds: int = 3600, ended_within_seconds: int = 86400
    ) -> LiveEventStats:
        """The dashboard's counts from every listing, read from the vendors each time."""
        listable = [adapter for adapter in info.context.adapters.values() if adapter.can_list]
        events = [event for listing in await asyncio.gather(*(read_listing(a) for a in listable)) for event in listing]
        now = utcnow()
        soon, recent = now + timedelta(seconds=starting_within_seconds), now - timedelta(seconds=ended_within_seconds)
        ended = [e for e in events if e.status is Status.ENDED and e.ended_at is not None and e.ended_at >= recent]
        return LiveEventStats(
            as_of=now,
            total=len(events),
            live_now=sum(e.is_live for e in events),
            by_status=[StatusCount(status=s, count=sum(e.status is s for e in events)) for s in Status],
            by_source=[SourceCount(source=s, count=sum(e.source is s for e in events)) for s in Source],
            starting_soon=sum(
                e.status is Status.SCHEDULED and e.scheduled_start is not None and now <= e.scheduled_start <= soon
                for e in events
            ),
            ended_with_recording=sum(bool(e.recordings) for e in ended),
            ended_without_recording=sum(not e.recordings for e in ended),
            starting_within_seconds=starting_within_seconds,
            ended_within_seconds=ended_within_seconds,
            vendors=[],
        )

    @strawberry.field
    async def live_events(self, info: NaiveInfo, first: int | None = None) -> LiveEventConnection:
        listable = [adapter for adapter in info.context.adapters.values() if adapter.can_list]
        listings = await asyncio.gather(*(read_listing(adapter) for adapter in listable))
        # The index's order: scheduled start (none last), then id.
        ordered = sorted(
            (event for listing in listings for event in listing),
            key=lambda e: (sort_start_of(e), e.source.value, e.native_id),
        )
        size = DEFAULT_PAGE if first is None else first
        now = utcnow()
        edges = [
            LiveEventEdge(
                cursor=encode_global_id(e.source, e.native_id), node=to_graphql(Loaded(e, now, ServedFrom.VENDOR), now)
            )
            for e in ordered[:size]
        ]
        total = len(ordered)

        async def count_all() -> int:
            return total

        return LiveEventConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=total > size,
                has_previous_page=False,
                start_cursor=edges[0].cursor if edges else None,
                end_cursor=edges[-1].cursor if edges else None,
            ),
            count_all=count_all,
        )


SCHEMA = strawberry.Schema(query=Query, types=[LoopCall, LoopSession, StreamloopStream, LivepushStream])


class NaiveView(GraphQLView[NaiveContext, None]):
    # orjson, as the gateway's view uses, so that the two differ in how they read and not in how they encode.
    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    async def get_context(self, request: web.Request, response: Any) -> NaiveContext:
        return NaiveContext(adapters=request.app[ADAPTERS])


async def _vendor_clients(app: web.Application) -> AsyncIterator[None]:
    async with aiohttp.ClientSession() as session:
        settings = Settings()
        # The baseline shares nothing: every read is a call of its own, even one identical to another in flight.
        for vendor in (settings.loop, settings.streamloop, settings.livepush):
            vendor.deduplicate_reads = False
        app[ADAPTERS] = build_adapters(build_clients(session, settings))
        yield


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app() -> web.Application:
    app = web.Application()
    app.cleanup_ctx.append(_vendor_clients)
    app.router.add_route("*", "/graphql", NaiveView(schema=SCHEMA, graphql_ide=None))
    app.router.add_get("/healthz", _healthz)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    web.run_app(create_app(), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
