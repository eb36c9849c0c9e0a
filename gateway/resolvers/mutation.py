"""Mutation fields, and the operation journal query. Thin: convert input, call a service, build types."""

from __future__ import annotations

import asyncio
import dataclasses
from enum import Enum
from typing import Annotated, Any

import strawberry

from gateway.context import GraphQLInfo
from gateway.errors import BadUserInput, UnsupportedByVendor
from gateway.ids import decode_global_id
from gateway.lifecycle import Verb
from gateway.model import Source
from gateway.operations import CreateRequest
from gateway.resolvers.instants import utc_instant
from gateway.resolvers.operations import failure_of, fresh, load_native, operation_type
from gateway.resolvers.permissions import ADMIN, OPERATOR
from gateway.types.arguments import EventId
from gateway.types.events import LiveEvent
from gateway.types.mutations import (
    CreateLiveEventInput,
    CreateLiveEventPayload,
    DeleteLiveEventPayload,
    InputWarning,
    LiveEventOperation,
    LiveEventPayload,
    RegisterForLiveEventInput,
    TargetFailure,
    UpdateLiveEventInput,
    UpdateLiveEventPayload,
)
from gateway.vendors.base import EventChanges, SourceAdapter

TARGET_SOURCES = {
    "loop_call": Source.LOOP_CALL,
    "loop_session": Source.LOOP_SESSION,
    "streamloop": Source.STREAMLOOP_STREAM,
    "livepush": Source.LIVEPUSH_STREAM,
}


def _plain(value: Any) -> Any:
    """Input values as JSON-ready data: enums by their vendor value, None fields left out."""
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


#: each target input type's field names, looked up once
_FIELD_NAMES: dict[type, tuple[str, ...]] = {}


def _fields_of(target: Any) -> dict[str, Any]:
    """A target input's fields, one level deep: the inputs hold no nested input types, so the deep copy
    `dataclasses.asdict` makes of each value is work for nothing (`_plain` copies the lists)."""
    names = _FIELD_NAMES.get(type(target))
    if names is None:
        names = _FIELD_NAMES[type(target)] = tuple(f.name for f in dataclasses.fields(target))
    return {name: getattr(target, name) for name in names}


def to_create_request(given: CreateLiveEventInput) -> CreateRequest:
    targets = {
        source: _plain(_fields_of(target))
        for name, source in TARGET_SOURCES.items()
        if (target := getattr(given.targets, name)) is not None
    }
    metadata: Any = given.metadata if given.metadata is not None else {}
    if not isinstance(metadata, dict):
        raise BadUserInput("metadata: must be a JSON object", field="metadata")
    return CreateRequest(
        title=given.title,
        scheduled_start=utc_instant(given.scheduled_start, "scheduledStart"),
        scheduled_end=utc_instant(given.scheduled_end, "scheduledEnd"),
        host_id=given.host_id,
        metadata=metadata,
        targets=targets,
    )


async def run_verb(info: GraphQLInfo, id: str, verb: Verb) -> LiveEvent | None:
    """Apply a lifecycle verb, and the event as its vendor answered (None when the vendor has no such
    event and the index never had it)."""
    source, native_id = decode_global_id(id)
    event = await info.context.services.lifecycle.apply(source, native_id, verb)
    return fresh(info, event) if event else None


def changes_of(given: UpdateLiveEventInput) -> EventChanges:
    changes = EventChanges(
        title=given.title,
        scheduled_start=utc_instant(given.scheduled_start, "scheduledStart"),
        scheduled_end=utc_instant(given.scheduled_end, "scheduledEnd"),
    )
    if changes == EventChanges():
        raise BadUserInput("input: give at least one field to change", field="input")
    if changes.title is not None and not changes.title.strip():
        raise BadUserInput("title: must not be empty", field="title")
    return changes


def change_fields(changes: EventChanges) -> list[tuple[str, object]]:
    """The changes by input field name, in the input's order."""
    return [
        ("title", changes.title),
        ("scheduledStart", changes.scheduled_start),
        ("scheduledEnd", changes.scheduled_end),
    ]


def split_changes(adapter: SourceAdapter, changes: EventChanges) -> tuple[EventChanges, dict[str, str]]:
    """The changes this vendor can make, and the given fields it cannot, each with why. A vendor that can be
    updated but can make none of the given changes refuses them all, naming them."""
    if not adapter.update_fields:
        return changes, {}  # its update says it cannot be updated at all
    given = [name for name, value in change_fields(changes) if value is not None]
    dropped = {
        name: adapter.update_drops.get(name, f"{adapter.source.value} cannot change it")
        for name in given
        if name not in adapter.update_fields
    }
    if len(dropped) == len(given):
        raise UnsupportedByVendor(adapter.vendor, "; ".join(f"{name}: {why}" for name, why in dropped.items()))
    return (
        EventChanges(
            title=changes.title if "title" in adapter.update_fields else None,
            scheduled_start=changes.scheduled_start if "scheduledStart" in adapter.update_fields else None,
            scheduled_end=changes.scheduled_end if "scheduledEnd" in adapter.update_fields else None,
        ),
        dropped,
    )


@strawberry.type(description="Changes at the vendors; each answers with what the vendor now holds.")
class Mutation:
    @strawberry.mutation(
        description="Create one event on several vendors at once. Each target succeeds or fails on its own; "
        "the same idempotencyKey (or Idempotency-Key header) replays the first answer.",
        permission_classes=OPERATOR,
    )
    async def create_live_event(
        self,
        info: GraphQLInfo,
        input: Annotated[CreateLiveEventInput, strawberry.argument(description="The event and its targets.")],
        idempotency_key: Annotated[
            str | None,
            strawberry.argument(
                description="Any string unique to this request: sent again, the first answer comes back and nothing "
                "is made twice. The Idempotency-Key header does the same."
            ),
        ] = None,
    ) -> CreateLiveEventPayload:
        context = info.context
        key = idempotency_key or context.request.headers.get("Idempotency-Key") or None
        request = to_create_request(input)
        outcome = await context.services.operations.create(context.caller, request, key)
        operation = outcome.operation
        made = {source: fresh(info, event) for source, event in outcome.created.items()}
        stored = [
            (source, record.native_id)
            for source, record in operation.targets.items()
            if record.native_id and source not in made
        ]
        read = await asyncio.gather(*(load_native(info, source, native_id) for source, native_id in stored))
        found = made | {source: event for (source, _), event in zip(stored, read, strict=True) if event is not None}
        events = [found[source] for source in operation.targets if source in found]
        failures = [
            failure_of(source, record.failure)
            if record.failure
            else TargetFailure(
                source=source,
                code="PENDING",
                message="the outcome is not known yet; see liveEventOperation",
                retryable=False,
            )
            for source, record in operation.targets.items()
            if not record.native_id
        ]
        return CreateLiveEventPayload(
            operation_id=strawberry.ID(operation.id),
            events=events,
            failures=failures,
            warnings=[
                InputWarning(source=source, field=name, message=why)
                for source in operation.targets
                for name, why in context.services.adapters[source].dropped_from_create(request.spec(source)).items()
            ],
            replayed=outcome.replayed,
        )

    @strawberry.mutation(description="Start streaming (Streamloop).", permission_classes=OPERATOR)
    async def start_live_event(self, info: GraphQLInfo, id: EventId) -> LiveEventPayload:
        return LiveEventPayload(event=await run_verb(info, id, lambda adapter, native_id: adapter.start(native_id)))

    @strawberry.mutation(
        description="Stop streaming (Streamloop), or end the call (Loop Live).", permission_classes=OPERATOR
    )
    async def stop_live_event(self, info: GraphQLInfo, id: EventId) -> LiveEventPayload:
        return LiveEventPayload(event=await run_verb(info, id, lambda adapter, native_id: adapter.stop(native_id)))

    @strawberry.mutation(description="Cancel a scheduled event (Loop Live sessions).", permission_classes=OPERATOR)
    async def cancel_live_event(self, info: GraphQLInfo, id: EventId) -> LiveEventPayload:
        return LiveEventPayload(event=await run_verb(info, id, lambda adapter, native_id: adapter.cancel(native_id)))

    @strawberry.mutation(
        description="Delete the event at its vendor (Streamloop, Livepush).", permission_classes=OPERATOR
    )
    async def delete_live_event(self, info: GraphQLInfo, id: EventId) -> DeleteLiveEventPayload:
        event = await run_verb(info, id, lambda adapter, native_id: adapter.delete(native_id))
        return DeleteLiveEventPayload(deleted_id=id, event=event)

    @strawberry.mutation(
        description="Change an event's title or schedule (Loop Live sessions: title and scheduledStart; "
        "Streamloop: all three). What the vendor can change is applied and listed in `applied`; the rest is "
        "left as it was and listed in `warnings`; when it can change nothing given, the update is refused "
        "(UNSUPPORTED_BY_VENDOR, naming the fields).",
        permission_classes=OPERATOR,
    )
    async def update_live_event(
        self,
        info: GraphQLInfo,
        id: EventId,
        input: Annotated[UpdateLiveEventInput, strawberry.argument(description="What to change.")],
    ) -> UpdateLiveEventPayload:
        changes = changes_of(input)
        source, _ = decode_global_id(id)
        adapter = info.context.services.adapters[source]
        applied, dropped = split_changes(adapter, changes)
        event = await run_verb(info, id, lambda adapter, native_id: adapter.update(native_id, applied))
        return UpdateLiveEventPayload(
            event=event,
            applied=[name for name, value in change_fields(applied) if value is not None],
            warnings=[InputWarning(source=source, field=name, message=why) for name, why in dropped.items()],
        )

    @strawberry.mutation(
        description="Read the event from its vendor now, whatever the cache holds.", permission_classes=OPERATOR
    )
    async def refresh_live_event(self, info: GraphQLInfo, id: EventId) -> LiveEventPayload:
        return LiveEventPayload(event=await run_verb(info, id, lambda adapter, native_id: adapter.fetch(native_id)))

    @strawberry.mutation(
        description="Register a person for an event (Loop Live sessions).", permission_classes=OPERATOR
    )
    async def register_for_live_event(
        self,
        info: GraphQLInfo,
        id: EventId,
        input: Annotated[
            RegisterForLiveEventInput | None,
            strawberry.argument(description="Who registers; null registers a participant."),
        ] = None,
    ) -> LiveEventPayload:
        given = input or RegisterForLiveEventInput()
        return LiveEventPayload(
            event=await run_verb(
                info,
                id,
                lambda adapter, native_id: adapter.register(
                    native_id, role=given.role.value, guest_email=given.guest_email
                ),
            )
        )

    @strawberry.mutation(description="Run a create operation's failed targets again.", permission_classes=ADMIN)
    async def retry_live_event_operation(
        self,
        info: GraphQLInfo,
        operation_id: Annotated[
            strawberry.ID, strawberry.argument(description="The operation (`CreateLiveEventPayload.operationId`).")
        ],
    ) -> LiveEventOperation:
        operation = await info.context.services.operations.retry(operation_id)
        return await operation_type(info, operation)


__all__ = ["Mutation"]
