"""Subscription fields: live updates of events and of dashboard counts, over graphql-transport-ws."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, AsyncIterator

import strawberry

from gateway.context import GraphQLInfo
from gateway.errors import GatewayError
from gateway.model import utcnow
from gateway.resolvers.permissions import VIEWER
from gateway.resolvers.query import live_event_stats, to_event_filter
from gateway.store.changes import Change
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
    replica already answered does not come back as a change."""
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
        wanted = to_event_filter(filter)
        async with subscribed(info) as queue:
            yield await live_event_stats(info, wanted, starting_within_seconds, ended_within_seconds)
            while True:
                change = await next_change(queue)
                if not wanted.matches(change.event):
                    continue
                await asyncio.sleep(STATS_SETTLE_SECONDS)
                while not queue.empty():  # the counts below include these too
                    await next_change(queue)
                yield await live_event_stats(info, wanted, starting_within_seconds, ended_within_seconds)
