"""Building the journal's operations and the events they made into GraphQL types."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import strawberry

from gateway.context import GraphQLInfo
from gateway.errors import VendorError
from gateway.model import Event, Source, utcnow
from gateway.store.journal import Operation
from gateway.store.journal import TargetFailure as JournalFailure
from gateway.types.enums import ServedFrom
from gateway.types.events import LiveEvent, Loaded, to_graphql
from gateway.types.mutations import LiveEventOperation, OperationTarget, TargetFailure


async def load_native(info: GraphQLInfo, source: Source, native_id: str) -> LiveEvent | None:
    """An event through this request's loader; None when it does not exist (or its source is not served
    here)."""
    loader = info.context.loader
    loaded: Loaded | None = None if loader is None else await loader.load((source, native_id))
    now = utcnow()
    if loader is not None:
        # For the response cache: the answer is good while the copy (or the absence) it read is fresh.
        fresh_for = timedelta(seconds=loader.fresh_for.get(source, 0.0))
        fetched_at = now if loaded is None else loaded.fetched_at
        info.context.reads.event((source, native_id), fetched_at + fresh_for, stale=loaded is not None and loaded.stale)
    return None if loaded is None else to_graphql(loaded, now)


def fresh(info: GraphQLInfo, event: Event) -> LiveEvent:
    """The event a vendor just answered, also primed into this request's loader."""
    loaded = Loaded(event, utcnow(), ServedFrom.VENDOR)
    loader = info.context.loader
    if loader is not None:
        key = (event.source, event.native_id)
        loader.clear(key).prime(key, loaded)
    return to_graphql(loaded, loaded.fetched_at)


def failure_of(source: Source, record_failure: JournalFailure) -> TargetFailure:
    return TargetFailure(
        source=source,
        code=record_failure.code,
        message=record_failure.message,
        retryable=record_failure.retryable,
    )


async def operation_type(info: GraphQLInfo, operation: Operation) -> LiveEventOperation:
    async def event_of(source: Source, native_id: str | None) -> LiveEvent | None:
        # The journal answers even when a vendor does not: an event that cannot be read is left out.
        if native_id is None:
            return None
        try:
            return await load_native(info, source, native_id)
        except VendorError:
            return None

    records = list(operation.targets.items())
    events = await asyncio.gather(*(event_of(source, record.native_id) for source, record in records))
    targets = []
    for (source, record), event in zip(records, events, strict=True):
        targets.append(
            OperationTarget(
                source=source,
                state=record.state,
                native_id=record.native_id,
                event=event,
                failure=failure_of(source, record.failure) if record.failure else None,
                attempts=record.attempts,
            )
        )
    return LiveEventOperation(
        id=strawberry.ID(operation.id),
        kind=operation.kind,
        state=operation.state,
        created_at=operation.created_at,
        updated_at=operation.updated_at,
        created_by=operation.caller,
        targets=targets,
    )
