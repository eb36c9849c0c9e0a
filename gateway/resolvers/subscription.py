"""Subscription fields: live updates of events and of dashboard counts, over graphql-transport-ws."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import strawberry

from gateway.context import DeferredError, GraphQLInfo, Services
from gateway.errors import GatewayError
from gateway.model import utcnow
from gateway.resolvers.permissions import VIEWER
from gateway.resolvers.query import check_stats_windows, compute_stats, to_event_filter
from gateway.store.changes import Change
from gateway.store.events import EventFilter
from gateway.types.arguments import ENDED_WITHIN, STARTING_WITHIN, EndedWithin, Filter, StartingWithin
from gateway.types.enums import ServedFrom
from gateway.types.events import LiveEvent, Loaded, to_graphql
from gateway.types.listing import LiveEventStats

#: changes that land this close together are answered with one new set of counts
STATS_SETTLE_SECONDS = 0.2


class SubscriberTooSlow(GatewayError):
    code = "RATE_LIMITED"
    retryable = True


async def next_change(queue: asyncio.Queue[Change | None]) -> Change:
    change = await queue.get()
    if change is None:
        raise SubscriberTooSlow("this subscription fell too far behind and was ended; subscribe again")
    return change


@contextlib.asynccontextmanager
async def subscribed(info: GraphQLInfo) -> AsyncIterator[asyncio.Queue[Change | None]]:
    """This replica's changes from now on. Cache writes still on their way land first, so that what this
    replica already answered does not come back as a change. Refused at once while MongoDB does not
    answer: the changes come through it."""
    info.context.services.store.health.check()
    await info.context.services.store.events.settled()
    async with info.context.services.hub.subscribe() as queue:
        yield queue


@strawberry.type(description="Live updates of events and of dashboard counts.")
class Subscription:
    @strawberry.subscription(
        description="Each event the filter selects, every time its status, schedule or recordings change.",
        permission_classes=VIEWER,
    )
    async def live_event_updated(self, info: GraphQLInfo, filter: Filter = None) -> AsyncGenerator[LiveEvent, None]:
        wanted = to_event_filter(filter)
        async with subscribed(info) as queue:
            while True:
                change = await next_change(queue)
                if wanted.matches(change.event):
                    yield to_graphql(Loaded(change.event, change.at, ServedFrom.CACHE), utcnow())

    @strawberry.subscription(
        description="The dashboard counts now, and again whenever a selected event changes.", permission_classes=VIEWER
    )
    async def live_event_stats_updated(
        self,
        info: GraphQLInfo,
        filter: Filter = None,
        starting_within_seconds: StartingWithin = STARTING_WITHIN,
        ended_within_seconds: EndedWithin = ENDED_WITHIN,
    ) -> AsyncGenerator[LiveEventStats, None]:
        check_stats_windows(starting_within_seconds, ended_within_seconds)
        wanted = to_event_filter(filter)
        services = info.context.services
        principal = info.context.principal
        # Equal subscriptions (the same filter and windows, by callers of the same role) share one computation.
        key = (
            "liveEventStatsUpdated",
            principal.role if principal else None,
            repr(wanted),
            starting_within_seconds,
            ended_within_seconds,
        )
        updates = services.shared.follow(
            key, lambda: stats_updates(services, wanted, starting_within_seconds, ended_within_seconds)
        )
        async for stats, failures in updates:
            for error in failures:
                info.context.deferred_errors.append(DeferredError(error, path=[info.path.key]))
            yield stats


async def stats_updates(
    services: Services, wanted: EventFilter, starting_within_seconds: int, ended_within_seconds: int
) -> AsyncIterator[tuple[LiveEventStats, list[GatewayError]]]:
    """The counts now, and again after each change of a selected event (changes close together counted once)."""
    await services.store.events.settled()
    async with services.hub.subscribe() as queue:
        yield await compute_stats(services, wanted, starting_within_seconds, ended_within_seconds)
        while True:
            change = await next_change(queue)
            if not wanted.matches(change.event):
                continue
            await asyncio.sleep(STATS_SETTLE_SECONDS)
            while not queue.empty():  # the counts below include these too
                await next_change(queue)
            yield await compute_stats(services, wanted, starting_within_seconds, ended_within_seconds)
