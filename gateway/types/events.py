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

IS_LIVE = (
    "True exactly while the event is on air or on its way there. Loop call: Loop's streaming provider reports it"
    " live (without that answer, as in listings: its status is `live`). Loop session: its status is `live`."
    " Streamloop stream: its state is `preparing` or `activating` (status STARTING), `active` or `failing`"
    " (LIVE); false while `stopping`. Livepush stream: always false, as Livepush reports no on-air state."
)


@strawberry.type(description="A recording of a live event.")
class Recording:
    url: str | None = strawberry.field(description="Where to fetch or play it; null while the vendor prepares it.")
    ready_at: datetime | None = strawberry.field(description="When the vendor finished preparing it.")
    native_id: str | None = strawberry.field(description="The vendor's id of the recording, when it has one.")


@strawberry.type(description="How old this event's data is and where it came from.")
class Freshness:
    fetched_at: datetime = strawberry.field(description="When the gateway last read this event from its vendor.")
    age_seconds: float = strawberry.field(description="Seconds between `fetchedAt` and this response.")
    stale: bool = strawberry.field(
        description="True when the vendor could not be reached and an older cached copy is shown."
    )
    served_from: ServedFrom = strawberry.field(description="Whether this response read the vendor or the index.")


@strawberry.interface(description="An object with a global id.")
class Node:
    id: strawberry.ID = strawberry.field(
        description="Global id: opaque, stable, unique across sources; give it to `node`, `liveEvent` or a mutation."
    )


@strawberry.interface(description="A live event at any vendor.")
class LiveEvent(Node):
    source: EventSource = strawberry.field(description="The kind of event, which tells its concrete type.")
    vendor: Vendor = strawberry.field(description="The company whose API holds the event.")
    native_id: str = strawberry.field(description="The vendor's own id for this event.")
    title: str | None = strawberry.field(description="The event's name at the vendor.")
    status: LiveEventStatus = strawberry.field(
        description="Where the event is in its lifecycle, the same words for every source (see `LiveEventStatus`)."
    )
    vendor_status: str | None = strawberry.field(description="The vendor's own status word.")
    is_live: bool = strawberry.field(description=IS_LIVE)
    scheduled_start: datetime | None = strawberry.field(description="When it is planned to start; null if never set.")
    scheduled_end: datetime | None = strawberry.field(
        description="When it is planned to end; null where the vendor keeps no planned end (Loop, Livepush)."
    )
    started_at: datetime | None = strawberry.field(description="When it last went live, as the vendor reports.")
    ended_at: datetime | None = strawberry.field(description="When it last stopped, as the vendor reports.")
    created_at: datetime | None = strawberry.field(description="When the vendor created it.")
    updated_at: datetime | None = strawberry.field(description="When the vendor last changed it.")
    host_id: str | None = strawberry.field(description="The vendor's id of the host user (Loop); null elsewhere.")
    recordings: list[Recording] = strawberry.field(description="Recordings the vendor reports; empty when none.")
    metadata: JSON | None = strawberry.field(description="Free-form data the vendor keeps with the event.")
    freshness: Freshness = strawberry.field(description="How old this data is and where this response got it.")


@strawberry.type(description="What Loop's streaming provider says about a call right now.")
class LoopCallLive:
    is_live: bool = strawberry.field(description="Whether the streaming provider has the call on air.")
    current_session_id: str | None = strawberry.field(description="The provider's id of the session on air.")
    ended_at: datetime | None = strawberry.field(description="When the provider last saw the call end.")


@strawberry.type(description="A Loop Live call (GetStream Video-backed).")
class LoopCall(LiveEvent):
    stream_call_id: str | None = strawberry.field(description="The call's id at Loop's streaming provider.")
    stream_call_type: str | None = strawberry.field(description="The call type at Loop's streaming provider.")
    recording_ready_at: datetime | None = strawberry.field(description="When the call's recording became ready.")
    live: LoopCallLive | None = strawberry.field(
        description="The streaming provider's view; null in listings and when Loop could not ask it."
    )


@strawberry.type(description="A scheduled Loop Live session or office hours.")
class LoopSession(LiveEvent):
    brand_id: str | None = strawberry.field(description="The Loop brand hosting the session.")
    kind: str | None = strawberry.field(description="Loop's kind of session: `live` or `office_hours`.")
    category: str | None = strawberry.field(description="Loop's category of the session.")
    max_participants: int | None = strawberry.field(description="How many may register.")
    duration_minutes: int | None = strawberry.field(description="Planned length in minutes.")
    registered_count: int | None = strawberry.field(description="How many have registered.")


@strawberry.type(description="A Streamloop 24/7 playlist stream.")
class StreamloopStream(LiveEvent):
    state: str | None = strawberry.field(description="Streamloop's own state word (as `vendorStatus`).")
    quality: str | None = strawberry.field(description="Output quality, in Streamloop's words (e.g. `1080p`).")
    framerate: str | None = strawberry.field(description="Output frames per second, in Streamloop's words.")
    destination_id: str | None = strawberry.field(description="The Streamloop destination it streams to.")
    playlist_ids: list[str] = strawberry.field(description="The Streamloop playlists it plays, in order.")
    stream_duration: int | None = strawberry.field(description="Seconds; 0 means it never expires.")


@strawberry.type(description="A Livepush multistreaming destination.")
class LivepushDestination:
    id: str | None = strawberry.field(description="Livepush's id of the destination.")
    label: str | None = strawberry.field(description="The destination's name at Livepush.")
    app_name: str | None = strawberry.field(description="The platform it streams to (Livepush's `appName`).")
    rtmp_base: str | None = strawberry.field(description="The RTMP server address it pushes to.")
    is_disabled: bool | None = strawberry.field(description="True when Livepush skips this destination.")


@strawberry.type(description="A Livepush stream.")
class LivepushStream(LiveEvent):
    category: str | None = strawberry.field(description="Livepush's category: `simulcast` or `schedule`.")
    chat_id: str | None = strawberry.field(description="Livepush's id of the stream's chat.")
    embed_id: str | None = strawberry.field(description="Livepush's id of the stream's web player embed.")
    zone: str | None = strawberry.field(description="The Livepush zone (region) the stream runs in.")
    destinations: list[LivepushDestination] = strawberry.field(description="Where Livepush pushes the stream.")
    is_disabled: bool | None = strawberry.field(description="True when the stream is disabled at Livepush.")


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
