"""Inputs and payloads of the mutations: fan-out create, lifecycle verbs and the operation journal."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import strawberry
from strawberry.scalars import JSON

from gateway.model import Source as EventSource
from gateway.store.journal import OperationState, TargetState
from gateway.types.enums import described_enum
from gateway.types.events import LiveEvent


class LoopSessionKind(StrEnum):
    LIVE = "live"
    OFFICE_HOURS = "office_hours"


class StreamloopQuality(StrEnum):
    Q_720P = "q_720p"
    Q_1080P = "q_1080p"
    Q_1440P = "q_1440p"
    Q_2160P = "q_2160p"


class StreamloopFramerate(StrEnum):
    F_24 = "f_24"
    F_25 = "f_25"
    F_30 = "f_30"
    F_60 = "f_60"


class LivepushCategory(StrEnum):
    SIMULCAST = "simulcast"
    SCHEDULE = "schedule"


class LoopRegistrationRole(StrEnum):
    HOST = "host"
    PARTICIPANT = "participant"
    GUEST = "guest"


described_enum(
    LoopSessionKind,
    "LoopSessionKind",
    "What a Loop Live session is.",
    {"LIVE": "A live session for an audience.", "OFFICE_HOURS": "Office hours: open time with the host."},
)
described_enum(
    StreamloopQuality,
    "StreamloopQuality",
    "A Streamloop stream's output resolution.",
    {f"Q_{p}P": f"{p}p." for p in (720, 1080, 1440, 2160)},
)
described_enum(
    StreamloopFramerate,
    "StreamloopFramerate",
    "A Streamloop stream's output frames per second.",
    {f"F_{n}": f"{n} frames per second." for n in (24, 25, 30, 60)},
)
described_enum(
    LivepushCategory,
    "LivepushCategory",
    "What a Livepush stream does.",
    {
        "SIMULCAST": "Relays one incoming stream to its destinations.",
        "SCHEDULE": "Plays a scheduled playlist of videos to its destinations.",
    },
)
described_enum(
    LoopRegistrationRole,
    "LoopRegistrationRole",
    "Who registers for a Loop Live session.",
    {
        "HOST": "A host of the session.",
        "PARTICIPANT": "A participant.",
        "GUEST": "A guest, named by `guestEmail`.",
    },
)
OperationStateEnum = described_enum(
    OperationState,
    "OperationState",
    "Whether a journaled operation still has targets in flight.",
    {
        "RUNNING": "Some target has no outcome yet (a replica is on it, or takes it over if its replica died).",
        "DONE": "Every target succeeded or failed; failed ones may be retried with `retryLiveEventOperation`.",
    },
)
TargetStateEnum = described_enum(
    TargetState,
    "OperationTargetState",
    "Where one target of an operation stands.",
    {
        "PENDING": "Not sent yet, or sent with no answer yet.",
        "SUCCEEDED": "The vendor made the event; `nativeId` names it.",
        "FAILED": "The vendor refused or could not be reached; `failure` says why.",
    },
)


@strawberry.input(description="A Loop Live call. The host defaults to the event's hostId.")
class LoopCallTargetInput:
    host_user_id: str | None = strawberry.field(default=None, description="The Loop user hosting the call.")


@strawberry.input(description="A Loop Live session. It needs a scheduledStart; the host defaults to hostId.")
class LoopSessionTargetInput:
    brand_id: str = strawberry.field(description="The Loop brand hosting the session.")
    max_participants: int = strawberry.field(description="How many may register.")
    kind: LoopSessionKind = strawberry.field(default=LoopSessionKind.LIVE, description="What the session is.")
    host_id: str | None = strawberry.field(default=None, description="The Loop user hosting it.")


@strawberry.input(description="A Streamloop stream.")
class StreamloopTargetInput:
    quality: StreamloopQuality | None = strawberry.field(default=None, description="Output resolution.")
    framerate: StreamloopFramerate | None = strawberry.field(default=None, description="Output frames per second.")
    playlist_ids: list[str] | None = strawberry.field(default=None, description="Playlists to play, in order.")
    destination_id: str | None = strawberry.field(default=None, description="The destination to stream to.")
    stream_duration: int | None = strawberry.field(default=None, description="Seconds; 0 never expires.")
    stream_key: str | None = strawberry.field(default=None, description="The destination's stream key.")
    run_backup_stream: bool | None = strawberry.field(default=None, description="Run Streamloop's backup stream.")
    agent_mode_enabled: bool | None = strawberry.field(default=None, description="Use Streamloop's agent mode.")


@strawberry.input(description="A Livepush stream.")
class LivepushTargetInput:
    category: LivepushCategory = strawberry.field(description="What the stream does.")


@strawberry.input(description="Where to create the event: one or more vendors at once.")
class LiveEventTargetsInput:
    loop_call: LoopCallTargetInput | None = strawberry.field(default=None, description="Make a Loop Live call.")
    loop_session: LoopSessionTargetInput | None = strawberry.field(
        default=None, description="Make a Loop Live session."
    )
    streamloop: StreamloopTargetInput | None = strawberry.field(default=None, description="Make a Streamloop stream.")
    livepush: LivepushTargetInput | None = strawberry.field(default=None, description="Make a Livepush stream.")


@strawberry.input(description="One event to make at each vendor the targets name.")
class CreateLiveEventInput:
    title: str = strawberry.field(description="The event's name, at every target.")
    scheduled_start: datetime | None = strawberry.field(
        default=None, description="When it is planned to start (a Loop session needs one)."
    )
    scheduled_end: datetime | None = strawberry.field(
        default=None, description="When it is planned to end, where the vendor keeps one (Streamloop)."
    )
    host_id: str | None = strawberry.field(default=None, description="The Loop user hosting it (Loop targets).")
    metadata: JSON | None = strawberry.field(default=None, description="A JSON object the vendors keep with it.")
    targets: LiveEventTargetsInput = strawberry.field(description="Which vendors to make it at, with their options.")


@strawberry.input(description="Fields to change; those left out stay as they are.")
class UpdateLiveEventInput:
    title: str | None = strawberry.field(default=None, description="A new name; not empty.")
    scheduled_start: datetime | None = strawberry.field(default=None, description="A new planned start.")
    scheduled_end: datetime | None = strawberry.field(default=None, description="A new planned end.")


@strawberry.input(description="Who registers for a Loop Live session.")
class RegisterForLiveEventInput:
    role: LoopRegistrationRole = strawberry.field(default=LoopRegistrationRole.PARTICIPANT, description="In what role.")
    guest_email: str | None = strawberry.field(default=None, description="The guest's email (role GUEST).")


@strawberry.type(description="A target that did not get its event.")
class TargetFailure:
    source: EventSource = strawberry.field(description="The target.")
    code: str = strawberry.field(
        description="An error code as in `extensions.code` (e.g. VENDOR_UNAVAILABLE); PENDING while unknown."
    )
    message: str = strawberry.field(description="What went wrong, for people.")
    retryable: bool = strawberry.field(description="Whether `retryLiveEventOperation` may succeed.")


@strawberry.type(
    description="Input a vendor could not take. It was not sent to that vendor; nothing else failed because of it."
)
class InputWarning:
    source: EventSource = strawberry.field(description="The target (or the event's source) that could not take it.")
    field: str = strawberry.field(description="The input field, as the mutation's input names it (`scheduledEnd`).")
    message: str = strawberry.field(description="Why, for people.")


@strawberry.type(description="What `createLiveEvent` made, per target.")
class CreateLiveEventPayload:
    operation_id: strawberry.ID = strawberry.field(description="The journaled operation (`liveEventOperation`).")
    events: list[LiveEvent] = strawberry.field(description="The events made, one per target that succeeded.")
    failures: list[TargetFailure] = strawberry.field(description="The targets that did not get their event.")
    warnings: list[InputWarning] = strawberry.field(
        description="Per target, each given input field that vendor has nowhere to keep (a Loop call's "
        "`scheduledEnd`, a Livepush stream's schedule): its event was made without it. Empty when every "
        "target took everything."
    )
    replayed: bool = strawberry.field(description="True when this answers an earlier request with the same key.")


@strawberry.type(description="An event as its vendor answered a mutation.")
class LiveEventPayload:
    event: LiveEvent | None = strawberry.field(description="The event now; null when the vendor no longer has it.")


@strawberry.type(description="What `updateLiveEvent` changed at the vendor, and what it could not.")
class UpdateLiveEventPayload:
    event: LiveEvent | None = strawberry.field(description="The event now, as the vendor answered the change.")
    applied: list[str] = strawberry.field(
        description="The input fields the vendor changed (`title`, `scheduledStart`, `scheduledEnd`), in that order."
    )
    warnings: list[InputWarning] = strawberry.field(
        description="The input fields this vendor cannot change, left as they were. When it can change none of "
        "those given, the mutation is refused with UNSUPPORTED_BY_VENDOR instead."
    )


@strawberry.type(description="What `deleteLiveEvent` deleted.")
class DeleteLiveEventPayload:
    deleted_id: strawberry.ID = strawberry.field(description="The global id of the deleted event.")
    event: LiveEvent | None = strawberry.field(description="The event as the index now keeps it (CANCELLED).")


@strawberry.type(description="One target of a journaled operation.")
class OperationTarget:
    source: EventSource = strawberry.field(description="The target.")
    state: TargetStateEnum = strawberry.field(description="Where it stands.")  # type: ignore[valid-type]
    native_id: str | None = strawberry.field(description="The vendor's id of the event made; null until made.")
    event: LiveEvent | None = strawberry.field(description="The event made, as the gateway reads it now.")
    failure: TargetFailure | None = strawberry.field(description="Why it failed; null unless FAILED.")
    attempts: int = strawberry.field(description="How many times the vendor was asked.")


@strawberry.type(description="A journaled mutation and the outcome of each of its targets.")
class LiveEventOperation:
    id: strawberry.ID = strawberry.field(description="The operation's id.")
    kind: str = strawberry.field(description="What the operation does (`create`).")
    state: OperationStateEnum = strawberry.field(description="Whether targets are in flight.")  # type: ignore[valid-type]
    created_at: datetime = strawberry.field(description="When it was journaled.")
    updated_at: datetime = strawberry.field(description="When a target last changed.")
    created_by: str = strawberry.field(
        description="Who made it: `sub:` and the bearer token's subject, or `key:` and the API key's name. "
        "Every admin sees every operation; this says whose it was."
    )
    targets: list[OperationTarget] = strawberry.field(description="Each target and its outcome.")
