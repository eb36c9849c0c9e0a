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
    sources: list[EventSource] | None = None
    vendors: list[Vendor] | None = None
    statuses: list[LiveEventStatus] | None = None
    is_live: bool | None = None
    scheduled_from: datetime | None = strawberry.field(
        default=None, description="Scheduled start at or after this instant."
    )
    scheduled_to: datetime | None = strawberry.field(default=None, description="Scheduled start before this instant.")
    title_contains: str | None = strawberry.field(
        default=None, description="Case-insensitive text the title must contain."
    )


@strawberry.type
class PageInfo:
    has_next_page: bool
    has_previous_page: bool
    start_cursor: str | None
    end_cursor: str | None


@strawberry.type
class LiveEventEdge:
    cursor: str
    node: LiveEvent


@strawberry.type(description="Live events ordered by scheduled start (events without one last), then id.")
class LiveEventConnection:
    edges: list[LiveEventEdge]
    page_info: PageInfo
    count_all: strawberry.Private[Callable[[], Awaitable[int]]]

    @strawberry.field(description="How many events the filter selects, over every page.")
    async def total_count(self) -> int:
        # Counted only when asked for: a count is a query of its own.
        return await self.count_all()


@strawberry.type(description="What the gateway knows of one vendor's API.")
class VendorHealth:
    vendor: Vendor
    configured: bool
    reachable: bool | None = strawberry.field(
        description="Whether the last call succeeded; null when the vendor has not been called."
    )
    last_ok_at: datetime | None
    last_error: str | None
    last_error_code: str | None
    last_error_at: datetime | None
    circuit: CircuitState
    consecutive_failures: int = strawberry.field(
        description="Failed calls in a row; the breaker opens at the configured number."
    )


@strawberry.type
class StatusCount:
    status: LiveEventStatus
    count: int


@strawberry.type
class SourceCount:
    source: EventSource
    count: int


@strawberry.type(description="Dashboard counts over the events a filter selects, computed by MongoDB.")
class LiveEventStats:
    as_of: datetime
    total: int
    live_now: int
    by_status: list[StatusCount] = strawberry.field(description="Every status, zero counts included.")
    by_source: list[SourceCount] = strawberry.field(description="Every source, zero counts included.")
    starting_soon: int = strawberry.field(description="Scheduled to start within `startingWithinSeconds`.")
    ended_with_recording: int = strawberry.field(description="Ended within `endedWithinSeconds`, with a recording.")
    ended_without_recording: int = strawberry.field(description="Ended within `endedWithinSeconds`, no recording.")
    starting_within_seconds: int
    ended_within_seconds: int
    vendors: list[VendorHealth]
