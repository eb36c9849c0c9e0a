"""The LiveEvent interface and one concrete type per source.

Every field is a plain attribute filled when the object is built from a `gateway.model.Event`, so no
field pays for a resolver call.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.scalars import JSON

from gateway import model
from gateway.ids import encode_global_id
from gateway.model import Source as EventSource
from gateway.model import Status as LiveEventStatus
from gateway.model import Vendor
from gateway.types.enums import ServedFrom


@strawberry.type(description="A recording of a live event.")
class Recording:
    url: str | None
    ready_at: datetime | None
    native_id: str | None


@strawberry.type(description="How old this event's data is and where it came from.")
class Freshness:
    fetched_at: datetime
    age_seconds: float
    stale: bool = strawberry.field(
        description="True when the vendor could not be reached and an older cached copy is shown."
    )
    served_from: ServedFrom


@strawberry.interface(description="An object with a global id.")
class Node:
    id: strawberry.ID


@strawberry.interface(description="A live event at any vendor.")
class LiveEvent(Node):
    source: EventSource
    vendor: Vendor
    native_id: str = strawberry.field(description="The vendor's own id for this event.")
    title: str | None
    status: LiveEventStatus
    vendor_status: str | None = strawberry.field(description="The vendor's own status word.")
    is_live: bool
    scheduled_start: datetime | None
    scheduled_end: datetime | None
    started_at: datetime | None
    ended_at: datetime | None
    created_at: datetime | None
    updated_at: datetime | None
    host_id: str | None
    recordings: list[Recording]
    metadata: JSON | None
    freshness: Freshness


@strawberry.type(description="What Loop's streaming provider says about a call right now.")
class LoopCallLive:
    is_live: bool
    current_session_id: str | None
    ended_at: datetime | None


@strawberry.type(description="A Loop Live call (GetStream Video-backed).")
class LoopCall(LiveEvent):
    stream_call_id: str | None
    stream_call_type: str | None
    recording_ready_at: datetime | None
    live: LoopCallLive | None


@strawberry.type(description="A scheduled Loop Live session or office hours.")
class LoopSession(LiveEvent):
    brand_id: str | None
    kind: str | None
    category: str | None
    max_participants: int | None
    duration_minutes: int | None
    registered_count: int | None


@strawberry.type(description="A Streamloop 24/7 playlist stream.")
class StreamloopStream(LiveEvent):
    state: str | None
    quality: str | None
    framerate: str | None
    destination_id: str | None
    playlist_ids: list[str]
    stream_duration: int | None = strawberry.field(description="Seconds; 0 means it never expires.")


@strawberry.type(description="A Livepush multistreaming destination.")
class LivepushDestination:
    id: str | None
    label: str | None
    app_name: str | None
    rtmp_base: str | None
    is_disabled: bool | None


@strawberry.type(description="A Livepush stream.")
class LivepushStream(LiveEvent):
    category: str | None
    chat_id: str | None
    embed_id: str | None
    zone: str | None
    destinations: list[LivepushDestination]
    is_disabled: bool | None


@dataclass(slots=True)
class Loaded:
    """An event as a loader hands it out: the event and where and when it was read."""

    event: model.Event
    fetched_at: datetime
    served_from: ServedFrom
    stale: bool = False


def _loop_call_extra(extra: dict[str, Any]) -> dict[str, Any]:
    live = extra.get("live")
    return {
        "stream_call_id": extra.get("stream_call_id"),
        "stream_call_type": extra.get("stream_call_type"),
        "recording_ready_at": model.as_utc(extra.get("recording_ready_at")),
        "live": LoopCallLive(
            is_live=bool(live.get("is_live")),
            current_session_id=live.get("current_session_id"),
            ended_at=model.as_utc(live.get("ended_at")),
        )
        if live
        else None,
    }


def _loop_session_extra(extra: dict[str, Any]) -> dict[str, Any]:
    keys = ("brand_id", "kind", "category", "max_participants", "duration_minutes", "registered_count")
    return {key: extra.get(key) for key in keys}


def _streamloop_extra(extra: dict[str, Any]) -> dict[str, Any]:
    keys = ("state", "quality", "framerate", "destination_id", "stream_duration")
    return {key: extra.get(key) for key in keys} | {"playlist_ids": list(extra.get("playlist_ids") or [])}


def _livepush_extra(extra: dict[str, Any]) -> dict[str, Any]:
    destinations = [
        LivepushDestination(
            id=d.get("id"),
            label=d.get("label"),
            app_name=d.get("appName"),
            rtmp_base=d.get("rtmpBase"),
            is_disabled=d.get("isDisabled"),
        )
        for d in extra.get("destinations") or []
        if isinstance(d, dict)
    ]
    return {
        "category": extra.get("category"),
        "chat_id": extra.get("chat_id"),
        "embed_id": extra.get("embed_id"),
        "zone": extra.get("zone"),
        "is_disabled": extra.get("is_disabled"),
        "destinations": destinations,
    }


TYPE_BY_SOURCE: dict[model.Source, tuple[type[LiveEvent], Any]] = {
    model.Source.LOOP_CALL: (LoopCall, _loop_call_extra),
    model.Source.LOOP_SESSION: (LoopSession, _loop_session_extra),
    model.Source.STREAMLOOP_STREAM: (StreamloopStream, _streamloop_extra),
    model.Source.LIVEPUSH_STREAM: (LivepushStream, _livepush_extra),
}


def to_graphql(loaded: Loaded, now: datetime) -> LiveEvent:
    """Build the concrete GraphQL type of an event, with its freshness as of `now`."""
    event = loaded.event
    cls, extra_fields = TYPE_BY_SOURCE[event.source]
    return cls(
        id=strawberry.ID(encode_global_id(event.source, event.native_id)),
        source=event.source,
        vendor=event.vendor,
        native_id=event.native_id,
        title=event.title,
        status=event.status,
        vendor_status=event.vendor_status,
        is_live=event.is_live,
        scheduled_start=event.scheduled_start,
        scheduled_end=event.scheduled_end,
        started_at=event.started_at,
        ended_at=event.ended_at,
        created_at=event.created_at,
        updated_at=event.updated_at,
        host_id=event.host_id,
        recordings=[Recording(url=r.url, ready_at=r.ready_at, native_id=r.native_id) for r in event.recordings],
        metadata=cast(JSON, event.metadata),
        freshness=Freshness(
            fetched_at=loaded.fetched_at,
            age_seconds=max(0.0, (now - loaded.fetched_at).total_seconds()),
            stale=loaded.stale,
            served_from=loaded.served_from,
        ),
        **extra_fields(event.extra),
    )
