"""The `liveEvents` connection, its filter, and vendor health."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime

import strawberry

from gateway.model import Source as EventSource
from gateway.model import Status as LiveEventStatus
from gateway.model import Vendor
from gateway.types.events import LiveEvent
from gateway.vendors.resilience import CircuitState


@strawberry.input(description="Narrows `liveEvents`; every given field must match.")
class LiveEventFilter:
    sources: list[EventSource] | None = strawberry.field(default=None, description="Any of these sources.")
    vendors: list[Vendor] | None = strawberry.field(default=None, description="Any of these vendors.")
    statuses: list[LiveEventStatus] | None = strawberry.field(default=None, description="Any of these statuses.")
    is_live: bool | None = strawberry.field(default=None, description="`isLive` equal to this.")
    scheduled_from: datetime | None = strawberry.field(
        default=None, description="Scheduled start at or after this instant."
    )
    scheduled_to: datetime | None = strawberry.field(default=None, description="Scheduled start before this instant.")
    title_contains: str | None = strawberry.field(
        default=None, description="Case-insensitive text the title must contain."
    )


@strawberry.type(description="Where a page sits in the whole list, and the cursors to move from it.")
class PageInfo:
    has_next_page: bool = strawberry.field(description="More events follow this page (ask with `after: endCursor`).")
    has_previous_page: bool = strawberry.field(
        description="Events come before this page (ask with `before: startCursor`)."
    )
    start_cursor: str | None = strawberry.field(description="The first edge's cursor; null on an empty page.")
    end_cursor: str | None = strawberry.field(description="The last edge's cursor; null on an empty page.")


@strawberry.type(description="One event in a page, with its place in the list.")
class LiveEventEdge:
    cursor: str = strawberry.field(description="Opaque; give it to `after` or `before` to page from here.")
    node: LiveEvent = strawberry.field(description="The event, as the index holds it.")


@strawberry.type(description="Live events ordered by scheduled start (events without one last), then id.")
class LiveEventConnection:
    edges: list[LiveEventEdge] = strawberry.field(description="This page's events, in order.")
    page_info: PageInfo = strawberry.field(description="Whether there are more pages, and cursors to them.")
    count_all: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many events the filter selects, over every page.")
    async def total_count(self) -> int:
        # Counted only when asked for: a count is a query of its own.
        return await self.count_all()


@strawberry.type(description="What the gateway knows of one vendor's API.")
class VendorHealth:
    vendor: Vendor = strawberry.field(description="The vendor.")
    configured: bool = strawberry.field(description="Whether the gateway has its address and credentials.")
    reachable: bool | None = strawberry.field(
        description="Whether the last call succeeded; null when the vendor has not been called."
    )
    last_ok_at: datetime | None = strawberry.field(description="When a call last succeeded, in this replica.")
    last_error: str | None = strawberry.field(description="What the last failed call said, in this replica.")
    last_error_code: str | None = strawberry.field(description="The error code of the last failed call.")
    last_error_at: datetime | None = strawberry.field(description="When a call last failed, in this replica.")
    circuit: CircuitState = strawberry.field(description="This replica's circuit breaker for the vendor.")
    consecutive_failures: int = strawberry.field(
        description="Failed calls in a row; the breaker opens at the configured number."
    )


@strawberry.type(description="How many selected events have one status.")
class StatusCount:
    status: LiveEventStatus = strawberry.field(description="The status.")
    count: int = strawberry.field(description="Selected events in it.")


@strawberry.type(description="How many selected events come from one source.")
class SourceCount:
    source: EventSource = strawberry.field(description="The source.")
    count: int = strawberry.field(description="Selected events from it.")


@strawberry.type(description="Dashboard counts over the events a filter selects, computed by MongoDB.")
class LiveEventStats:
    as_of: datetime = strawberry.field(description="When the counts were taken.")
    total: int = strawberry.field(description="Selected events.")
    live_now: int = strawberry.field(description="Selected events whose `isLive` is true.")
    by_status: list[StatusCount] = strawberry.field(description="Every status, zero counts included.")
    by_source: list[SourceCount] = strawberry.field(description="Every source, zero counts included.")
    starting_soon: int = strawberry.field(description="Scheduled to start within `startingWithinSeconds`.")
    ended_with_recording: int = strawberry.field(description="Ended within `endedWithinSeconds`, with a recording.")
    ended_without_recording: int = strawberry.field(description="Ended within `endedWithinSeconds`, no recording.")
    starting_within_seconds: int = strawberry.field(description="The window `startingSoon` counts over.")
    ended_within_seconds: int = strawberry.field(description="The window `endedWith(out)Recording` count over.")
    vendors: list[VendorHealth] = strawberry.field(description="Each vendor's health, as `vendors` gives it.")
