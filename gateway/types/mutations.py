"""Inputs and payloads of the mutations: fan-out create, lifecycle verbs and the operation journal."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

import strawberry
from strawberry.scalars import JSON

from gateway.model import Source as EventSource
from gateway.store.journal import OperationState, TargetState
from gateway.types.events import LiveEvent


@strawberry.enum(name="LoopSessionKind")
class LoopSessionKind(StrEnum):
    LIVE = "live"
    OFFICE_HOURS = "office_hours"


@strawberry.enum(name="StreamloopQuality")
class StreamloopQuality(StrEnum):
    Q_720P = "q_720p"
    Q_1080P = "q_1080p"
    Q_1440P = "q_1440p"
    Q_2160P = "q_2160p"


@strawberry.enum(name="StreamloopFramerate")
class StreamloopFramerate(StrEnum):
    F_24 = "f_24"
    F_25 = "f_25"
    F_30 = "f_30"
    F_60 = "f_60"


@strawberry.enum(name="LivepushCategory")
class LivepushCategory(StrEnum):
    SIMULCAST = "simulcast"
    SCHEDULE = "schedule"


@strawberry.enum(name="LoopRegistrationRole")
class LoopRegistrationRole(StrEnum):
    HOST = "host"
    PARTICIPANT = "participant"
    GUEST = "guest"


OperationStateEnum = strawberry.enum(OperationState, name="OperationState")
TargetStateEnum = strawberry.enum(TargetState, name="OperationTargetState")


@strawberry.input(description="A Loop Live call. The host defaults to the event's hostId.")
class LoopCallTargetInput:
    host_user_id: str | None = None


@strawberry.input(description="A Loop Live session. It needs a scheduledStart; the host defaults to hostId.")
class LoopSessionTargetInput:
    brand_id: str
    max_participants: int
    kind: LoopSessionKind = LoopSessionKind.LIVE
    host_id: str | None = None


@strawberry.input(description="A Streamloop stream.")
class StreamloopTargetInput:
    quality: StreamloopQuality | None = None
    framerate: StreamloopFramerate | None = None
    playlist_ids: list[str] | None = None
    destination_id: str | None = None
    stream_duration: int | None = strawberry.field(default=None, description="Seconds; 0 never expires.")
    stream_key: str | None = None
    run_backup_stream: bool | None = None
    agent_mode_enabled: bool | None = None


@strawberry.input(description="A Livepush stream.")
class LivepushTargetInput:
    category: LivepushCategory


@strawberry.input(description="Where to create the event: one or more vendors at once.")
class LiveEventTargetsInput:
    loop_call: LoopCallTargetInput | None = None
    loop_session: LoopSessionTargetInput | None = None
    streamloop: StreamloopTargetInput | None = None
    livepush: LivepushTargetInput | None = None


@strawberry.input
class CreateLiveEventInput:
    title: str
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    host_id: str | None = None
    metadata: JSON | None = None
    targets: LiveEventTargetsInput


@strawberry.input(description="Fields to change; those left out stay as they are.")
class UpdateLiveEventInput:
    title: str | None = None
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None


@strawberry.input
class RegisterForLiveEventInput:
    role: LoopRegistrationRole = LoopRegistrationRole.PARTICIPANT
    guest_email: str | None = None


@strawberry.type(description="A target that did not get its event.")
class TargetFailure:
    source: EventSource
    code: str
    message: str
    retryable: bool


@strawberry.type
class CreateLiveEventPayload:
    operation_id: strawberry.ID
    events: list[LiveEvent]
    failures: list[TargetFailure]
    replayed: bool = strawberry.field(description="True when this answers an earlier request with the same key.")


@strawberry.type
class LiveEventPayload:
    event: LiveEvent | None


@strawberry.type
class DeleteLiveEventPayload:
    deleted_id: strawberry.ID
    event: LiveEvent | None = strawberry.field(description="The event as the index now keeps it (CANCELLED).")


@strawberry.type
class OperationTarget:
    source: EventSource
    state: TargetStateEnum  # type: ignore[valid-type]
    native_id: str | None
    event: LiveEvent | None
    failure: TargetFailure | None
    attempts: int


@strawberry.type(description="A journaled mutation and the outcome of each of its targets.")
class LiveEventOperation:
    id: strawberry.ID
    kind: str
    state: OperationStateEnum  # type: ignore[valid-type]
    created_at: datetime
    updated_at: datetime
    targets: list[OperationTarget]
