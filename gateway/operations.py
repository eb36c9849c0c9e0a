"""Mutations that create vendor objects: fan-out, idempotency, the journal, retries and reconciliation.

The order of a create is what makes it safe: validate every target (no vendor is called for a bad one),
bind the caller's idempotency key, write the journal entry, and only then call the vendors, recording
each outcome as it lands. A runner holds its operation under a lease that outlasts any vendor call it
can make; an operation still running when its lease ran out was abandoned by a crash, and the
reconciler takes it over.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from ulid import ULID

from gateway.errors import BadUserInput, GatewayError, NotFound, OutcomeUnknown, UnsupportedByVendor, VendorError
from gateway.model import Event, Source, utcnow
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.journal import Operation, OperationState, TargetFailure, TargetRecord, TargetState
from gateway.vendors.base import CreateSpec, SourceAdapter

log = logging.getLogger(__name__)

#: how long past the slowest possible vendor call an operation's lease lasts
LEASE_MARGIN = timedelta(seconds=1)
POLL_INTERVAL = 0.05


@dataclass(slots=True)
class CreateRequest:
    """`createLiveEvent`'s input as plain data: the common fields and each target's own options."""

    title: str
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    host_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    targets: dict[Source, dict[str, Any]] = field(default_factory=dict)

    def spec(self, source: Source) -> CreateSpec:
        return CreateSpec(
            title=self.title,
            scheduled_start=self.scheduled_start,
            scheduled_end=self.scheduled_end,
            host_id=self.host_id,
            metadata=dict(self.metadata),
            options=dict(self.targets[source]),
        )

    def to_doc(self) -> dict[str, Any]:
        return {
            "title": self.title,
            "scheduled_start": self.scheduled_start,
            "scheduled_end": self.scheduled_end,
            "host_id": self.host_id,
            "metadata": self.metadata,
            "targets": {source.value: options for source, options in sorted(self.targets.items())},
        }

    def fingerprint(self) -> str:
        """The same for the same input whatever its key order, so a replay can be told from a reuse."""
        return hashlib.sha256(orjson.dumps(self.to_doc(), option=orjson.OPT_SORT_KEYS)).hexdigest()


@dataclass(slots=True)
class OperationOutcome:
    operation: Operation
    replayed: bool = False
    #: the events this run made, as their vendors answered (a replay has none: they are read again)
    created: dict[Source, Event] = field(default_factory=dict)


def vendor_idempotency_key(operation_id: str, source: Source) -> str:
    """The key a vendor de-duplicates by: one per operation and target, the same on every re-send."""
    return f"{operation_id}.{source.value}"


class OperationRunner:
    def __init__(self, store: Store, adapters: dict[Source, SourceAdapter], settings: Settings) -> None:
        self.store = store
        self.adapters = adapters
        self.settings = settings

    def lease_for(self, sources: Iterable[Source]) -> timedelta:
        slowest = max(
            (
                vendor.connect_timeout + vendor.read_timeout
                for vendor in (getattr(self.settings, s.vendor.value.lower()) for s in sources)
            ),
            default=0.0,
        )
        return timedelta(seconds=slowest) + LEASE_MARGIN

    def adapter(self, source: Source) -> SourceAdapter:
        adapter = self.adapters.get(source)
        if adapter is None:
            raise BadUserInput(f"{source.value} is not served by this gateway", field="targets")
        return adapter

    async def create(self, caller: str, request: CreateRequest, idempotency_key: str | None) -> OperationOutcome:
        if not request.targets:
            raise BadUserInput("targets: name at least one vendor to create the event on", field="targets")
        operation_id = f"op_{ULID()}"
        bodies = {
            source: self.adapter(source).prepare_create(request.spec(source), operation_id)
            for source in request.targets
        }
        lease = self.lease_for(bodies)
        if idempotency_key:
            held = await self.store.idempotency.claim(caller, idempotency_key, request.fingerprint(), operation_id)
            if held is not None:
                if held.request_hash != request.fingerprint():
                    raise BadUserInput(
                        "idempotencyKey: this key was first used with a different input",
                        field="idempotencyKey",
                        reason="IDEMPOTENCY_KEY_REUSED",
                    )
                return OperationOutcome(await self.wait_until_done(held.operation_id, lease), replayed=True)
        operation = await self.store.journal.begin(
            operation_id,
            kind="create",
            caller=caller,
            input=request.to_doc(),
            targets=[TargetRecord(source, TargetState.PENDING, request=body) for source, body in bodies.items()],
            lease=lease,
        )
        created: dict[Source, Event] = {}
        return OperationOutcome(await self._run(operation, list(bodies), created=created), created=created)

    async def retry(self, operation_id: str) -> Operation:
        """Run an operation's failed targets again; the others stay as they are."""
        operation = await self.store.journal.get(operation_id)
        if operation is None:
            raise NotFound(f"operationId: no operation {operation_id}")
        failed = [s for s, t in operation.targets.items() if t.state is TargetState.FAILED]
        if not failed:
            return operation
        if not await self.store.journal.reopen(operation_id, self.lease_for(failed)):
            raise BadUserInput(
                f"operationId: {operation_id} is running; retry when it is done",
                field="operationId",
                reason="OPERATION_RUNNING",
            )
        return await self._run(operation, failed, look_first=True)

    async def reconcile(self) -> int:
        """Take over operations abandoned by a crash; the number taken over."""
        taken = 0
        for operation in await self.store.journal.abandoned():
            if await self.take_over(operation) is not None:
                taken += 1
        return taken

    async def take_over(self, operation: Operation) -> Operation | None:
        """Finish an abandoned operation's pending targets; None when another runner took it first.

        A target left pending may or may not have reached its vendor. Its lease has run out, so no call
        of the crashed runner is still in flight: re-sending is safe where the vendor de-duplicates,
        and elsewhere the vendor is asked first whether the object exists.
        """
        pending = [s for s, t in operation.targets.items() if t.state is TargetState.PENDING]
        if not await self.store.journal.reopen(operation.id, self.lease_for(pending)):
            return None
        log.info("taking over operation %s: targets %s", operation.id, [s.value for s in pending])
        return await self._run(operation, pending, look_first=True, unknown_outcome_fails=True)

    async def run_reconciler(self, stop: asyncio.Event, interval: float) -> None:
        while not stop.is_set():
            try:
                await self.reconcile()
            except Exception:
                log.exception("reconciliation round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=interval)

    async def wait_until_done(self, operation_id: str, lease: timedelta) -> Operation:
        """The operation once its runner is done with it; one whose runner died is taken over here."""
        deadline = utcnow() + lease + LEASE_MARGIN
        while True:
            operation = await self.store.journal.get(operation_id)
            if operation is not None:
                if operation.state is OperationState.DONE:
                    return operation
                if operation.lease_until <= utcnow():
                    finished = await self.take_over(operation)
                    if finished is not None:
                        return finished
                deadline = max(deadline, operation.lease_until + LEASE_MARGIN)
            elif utcnow() > deadline:
                # The key's first request died before writing its journal entry, so no vendor was called.
                raise GatewayError(f"the request first made with this key did not complete ({operation_id})")
            await asyncio.sleep(POLL_INTERVAL)

    async def _run(
        self,
        operation: Operation,
        sources: list[Source],
        *,
        look_first: bool = False,
        unknown_outcome_fails: bool = False,
        created: dict[Source, Event] | None = None,
    ) -> Operation:
        if created is None:
            created = {}

        async def run_target(source: Source) -> None:
            record = operation.targets[source]
            record.attempts += 1
            try:
                event = await self._create_once(operation, record, look_first, unknown_outcome_fails)
            except VendorError as error:
                record.state = TargetState.FAILED
                record.failure = TargetFailure(error.code, error.message, error.retryable)
            except Exception as error:
                log.exception("operation %s, target %s", operation.id, source.value)
                record.state = TargetState.FAILED
                record.failure = TargetFailure("INTERNAL", f"internal error: {type(error).__name__}", True)
            else:
                record.state, record.native_id, record.failure = TargetState.SUCCEEDED, event.native_id, None
                created[source] = event
            await self.store.journal.record(operation.id, record)

        await asyncio.gather(*(run_target(s) for s in sources))
        if created:
            await self.store.events.put_many(list(created.values()), fetched_at=utcnow())
        await self.store.journal.finish(operation.id)
        operation.state = OperationState.DONE
        return operation

    async def _create_once(
        self, operation: Operation, record: TargetRecord, look_first: bool, unknown_outcome_fails: bool
    ) -> Event:
        """Create the target's object, unless an earlier attempt already did."""
        adapter = self.adapter(record.source)
        key = vendor_idempotency_key(operation.id, record.source)
        if look_first and not adapter.idempotent_create:
            try:
                found = await adapter.find_created(
                    record.request, operation_id=operation.id, since=operation.created_at
                )
            except UnsupportedByVendor as error:
                if unknown_outcome_fails:
                    raise OutcomeUnknown(
                        adapter.vendor,
                        f"interrupted while creating on {record.source.value}, whose vendor offers no way to "
                        "find what an interrupted create made; check the vendor before retrying this target",
                    ) from error
            else:
                if found is not None:
                    return found
        return await adapter.create(record.request, idempotency_key=key)
