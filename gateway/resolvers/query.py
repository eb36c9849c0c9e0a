"""Query fields. Thin: decode, call a loader or the store, build types."""

from __future__ import annotations

import time
from collections.abc import Awaitable
from datetime import UTC, datetime
from typing import Annotated, Any, cast

import strawberry

from gateway.context import DeferredError, GraphQLInfo, Services
from gateway.errors import BadUserInput, GatewayError
from gateway.ids import decode_global_id
from gateway.model import SOURCE_VENDOR, Source, Status, utcnow
from gateway.resolvers.instants import utc_instant
from gateway.resolvers.operations import load_native, operation_type
from gateway.resolvers.permissions import ADMIN, VIEWER
from gateway.store.events import EventFilter
from gateway.types.arguments import (
    DEFAULT_PAGE,
    ENDED_WITHIN,
    MAX_PAGE,
    STARTING_WITHIN,
    After,
    Before,
    EndedWithin,
    EventId,
    Filter,
    First,
    Last,
    StartingWithin,
)
from gateway.types.enums import ServedFrom
from gateway.types.events import LiveEvent, Loaded, Node, to_graphql
from gateway.types.listing import (
    LiveEventConnection,
    LiveEventEdge,
    LiveEventFilter,
    LiveEventStats,
    PageInfo,
    SourceCount,
    StatusCount,
    VendorHealth,
)
from gateway.types.mutations import LiveEventOperation


async def load_event(info: GraphQLInfo, global_id: str) -> LiveEvent | None:
    return await load_native(info, *decode_global_id(global_id))


def to_event_filter(given: LiveEventFilter | None) -> EventFilter:
    if given is None:
        return EventFilter()
    sources = set(given.sources) if given.sources is not None else None
    if given.vendors is not None:
        of_vendors = {s for s, v in SOURCE_VENDOR.items() if v in given.vendors}
        sources = of_vendors if sources is None else sources & of_vendors
    return EventFilter(
        sources=sorted(sources) if sources is not None else None,
        statuses=list(given.statuses) if given.statuses is not None else None,
        is_live=given.is_live,
        scheduled_from=utc_instant(given.scheduled_from, "filter.scheduledFrom"),
        scheduled_to=utc_instant(given.scheduled_to, "filter.scheduledTo"),
        title_contains=given.title_contains or None,
    )


def page_size(first: int | None, last: int | None) -> tuple[int | None, int | None]:
    if first is not None and last is not None:
        raise BadUserInput("first and last cannot be used together", field="last")
    for name, value in (("first", first), ("last", last)):
        if value is not None and not 0 <= value <= MAX_PAGE:
            raise BadUserInput(f"{name} must be between 0 and {MAX_PAGE}, got {value}", field=name)
    if first is None and last is None:
        first = DEFAULT_PAGE
    return first, last


@strawberry.type(
    description="Reads: from the index for listings and counts, from the vendors (or a fresh cached copy) by id."
)
class Query:
    @strawberry.field(
        description="Any object by its global id; null when it does not exist.", permission_classes=VIEWER
    )
    async def node(
        self,
        info: GraphQLInfo,
        id: Annotated[strawberry.ID, strawberry.argument(description="A global id, as `Node.id` gives it.")],
    ) -> Node | None:
        return await load_event(info, id)

    @strawberry.field(
        description=f"Several objects by global id (at most {MAX_PAGE}), in order; null for each that does not exist.",
        permission_classes=VIEWER,
    )
    def nodes(
        self,
        info: GraphQLInfo,
        ids: Annotated[
            list[strawberry.ID], strawberry.argument(description=f"Global ids, at most {MAX_PAGE}; repeats allowed.")
        ],
    ) -> list[Node | None]:
        if len(ids) > MAX_PAGE:
            raise BadUserInput(f"at most {MAX_PAGE} ids at once, got {len(ids)}", field="ids")
        # One awaitable per id, which graphql-core awaits item by item: each id fails or succeeds on its
        # own (an error sits at its index), and all of them batch into the same loaders.
        pending: list[Awaitable[Node | None]] = [load_event(info, i) for i in ids]
        return cast(list[Node | None], pending)

    @strawberry.field(
        description="A live event by its global id; null when it does not exist.", permission_classes=VIEWER
    )
    async def live_event(self, info: GraphQLInfo, id: EventId) -> LiveEvent | None:
        return await load_event(info, id)

    @strawberry.field(
        description="Live events across every vendor, from the index, paged with cursors "
        f"({DEFAULT_PAGE} a page unless `first` or `last` says otherwise, at most {MAX_PAGE}).",
        permission_classes=VIEWER,
    )
    async def live_events(
        self,
        info: GraphQLInfo,
        filter: Filter = None,
        first: First = None,
        after: After = None,
        last: Last = None,
        before: Before = None,
    ) -> LiveEventConnection:
        first, last = page_size(first, last)
        event_filter = to_event_filter(filter)
        services = info.context.services
        failures = await services.index.ensure_fresh(event_filter.sources)
        for error in failures.values():
            info.context.deferred_errors.append(DeferredError(error, path=[info.path.key]))
        read_listing(info, event_filter)
        try:
            page = await services.store.events.page(event_filter, first=first, after=after, last=last, before=before)
        except ValueError as exc:
            raise BadUserInput(str(exc), field="before" if before else "after") from exc
        now = utcnow()
        stale_sources: set[Source] = set(failures)
        edges = [
            LiveEventEdge(
                cursor=cursor,
                node=to_graphql(Loaded(event, fetched_at, ServedFrom.CACHE, stale=event.source in stale_sources), now),
            )
            for event, cursor, fetched_at in page.events
        ]
        return LiveEventConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next,
                has_previous_page=page.has_previous,
                start_cursor=page.start_cursor,
                end_cursor=page.end_cursor,
            ),
            count_all=lambda: services.store.events.count(event_filter),
        )

    @strawberry.field(
        description="A journaled operation and the outcome of each of its targets.", permission_classes=ADMIN
    )
    async def live_event_operation(
        self,
        info: GraphQLInfo,
        id: Annotated[
            strawberry.ID, strawberry.argument(description="The operation's id (`CreateLiveEventPayload.operationId`).")
        ],
    ) -> LiveEventOperation | None:
        store = info.context.services.store
        store.health.check()
        operation = await store.journal.get(id)
        return None if operation is None else await operation_type(info, operation)

    @strawberry.field(
        description="Each vendor: whether it is configured, reachable, and its last error.", permission_classes=VIEWER
    )
    def vendors(self, info: GraphQLInfo) -> list[VendorHealth]:
        return vendor_health(info.context.services)

    @strawberry.field(
        description="Counts for dashboards: by status and source, live now, starting soon, ended recently.",
        permission_classes=VIEWER,
    )
    async def live_event_stats(
        self,
        info: GraphQLInfo,
        filter: Filter = None,
        starting_within_seconds: StartingWithin = STARTING_WITHIN,
        ended_within_seconds: EndedWithin = ENDED_WITHIN,
    ) -> LiveEventStats:
        return await live_event_stats(info, to_event_filter(filter), starting_within_seconds, ended_within_seconds)


async def live_event_stats(
    info: GraphQLInfo, event_filter: EventFilter, starting_within_seconds: int, ended_within_seconds: int
) -> LiveEventStats:
    check_stats_windows(starting_within_seconds, ended_within_seconds)
    stats, failures = await compute_stats(
        info.context.services, event_filter, starting_within_seconds, ended_within_seconds
    )
    read_listing(info, event_filter)
    # Its windows move with the clock, and it tells the vendors' health: kept a moment at most.
    info.context.reads.until(time.time() + info.context.services.settings.response_cache.windowed_ttl)
    for error in failures:
        info.context.deferred_errors.append(DeferredError(error, path=[info.path.key]))
    return stats


def read_listing(info: GraphQLInfo, event_filter: EventFilter) -> None:
    """For the response cache: the listings an answer read, good until the first is due to be read again."""
    services = info.context.services
    sources = set(event_filter.sources) if event_filter.sources is not None else set(services.adapters)
    info.context.reads.listing(sources, services.index.fresh_until(sources))


def check_stats_windows(starting_within_seconds: int, ended_within_seconds: int) -> None:
    for name, value in (
        ("startingWithinSeconds", starting_within_seconds),
        ("endedWithinSeconds", ended_within_seconds),
    ):
        if value < 0:
            raise BadUserInput(f"{name} must not be negative", field=name)


async def compute_stats(
    services: Services, event_filter: EventFilter, starting_within_seconds: int, ended_within_seconds: int
) -> tuple[LiveEventStats, list[GatewayError]]:
    """The dashboard's counts, and the listings that could not be refreshed for them."""
    failures: list[GatewayError] = list((await services.index.ensure_fresh(event_filter.sources)).values())
    now = utcnow()
    stats = await services.store.events.stats(
        event_filter, now=now, starting_within=starting_within_seconds, ended_within=ended_within_seconds
    )
    return LiveEventStats(
        as_of=now,
        total=stats.total,
        live_now=stats.live_now,
        by_status=[StatusCount(status=s, count=stats.by_status.get(s, 0)) for s in Status],
        by_source=[SourceCount(source=s, count=stats.by_source.get(s, 0)) for s in Source],
        starting_soon=stats.starting,
        ended_with_recording=stats.ended_with_recording,
        ended_without_recording=stats.ended_without_recording,
        starting_within_seconds=starting_within_seconds,
        ended_within_seconds=ended_within_seconds,
        vendors=vendor_health(services),
    ), failures


def vendor_health(services: Services) -> list[VendorHealth]:
    out = []
    for vendor, client in services.clients.items():
        health = client.health
        error = health.last_error
        reachable: bool | None = None
        if health.last_ok_at is not None or health.last_error_at is not None:
            reachable = (health.last_ok_at or 0) >= (health.last_error_at or 0)
        out.append(
            VendorHealth(
                vendor=vendor,
                configured=client.configured,
                reachable=reachable,
                last_ok_at=_instant(health.last_ok_at),
                last_error=error.message if error else None,
                last_error_code=error.code if error else None,
                last_error_at=_instant(health.last_error_at),
                circuit=client.breaker.state,
                consecutive_failures=client.breaker.consecutive_failures,
            )
        )
    return out


def _instant(timestamp: float | None) -> datetime | None:
    return None if timestamp is None else datetime.fromtimestamp(timestamp, UTC)


__all__: list[Any] = ["Query"]
