"""Mutations that create vendor objects: fan-out, idempotency, the journal, retries and reconciliation.

The order of a create is what makes it safe: validate every target (no vendor is called for a bad one),
bind the caller's idempotency key and write the journal entry (both at once), and only then call the
vendors, recording each outcome as it lands. A runner holds its operation under a lease that outlasts
any vendor call it can make; an operation still running when its lease ran out was abandoned by a
crash, and the reconciler takes it over.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import uuid
from collections.abc import Awaitable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import orjson
from pymongo.errors import PyMongoError
from ulid import ULID

from gateway.background import repeat
from gateway.errors import (
    BadUserInput,
    NotFound,
    OperationIncomplete,
    OutcomeUnknown,
    UnsupportedByVendor,
    VendorConflict,
    VendorError,
    VendorNotFound,
    VendorProtocolError,
)
from gateway.model import Event, Source, utcnow
from gateway.settings import Settings
from gateway.store import Store
from gateway.store.idempotency import record_id
from gateway.store.journal import (
    Operation,
    OperationNotStarted,
    OperationOutcomeUnknown,
    OperationState,
    TargetFailure,
    TargetRecord,
    TargetState,
)
from gateway.vendors.base import CreateSender, CreateSpec, SourceAdapter
from gateway.vendors.resilience import worst_case_seconds

log = logging.getLogger(__name__)

#: how long past the slowest possible vendor call an operation's lease lasts
LEASE_MARGIN = timedelta(seconds=1)
POLL_INTERVAL = 0.05
#: how long an operation is done before the reconciler checks that the index holds what it created
INDEX_GRACE = timedelta(seconds=1)
#: a vendor that could not say whether an object exists
_UNKNOWN = object()
#: how many times a lookup after an interrupted create looks again when another operation claimed its find
LOOKUPS = 3
#: how long a target's outcome waits for the outcomes of targets still out to land, so that outcomes landing
#: close together go in one journal write (the last outcome never waits: no target is out then)
COALESCE_SECONDS = 0.003


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


def failure_of(error: VendorError) -> TargetFailure:
    # Without an answer (a timeout, a dropped connection) or with a broken one, the vendor may have made
    # the object all the same; an error status says it did not.
    uncertain = error.status is None or isinstance(error, VendorProtocolError)
    return TargetFailure(error.code, error.message, error.retryable, uncertain)


class OperationRunner:
    def __init__(self, store: Store, adapters: dict[Source, SourceAdapter], settings: Settings) -> None:
        self.store = store
        self.adapters = adapters
        self.settings = settings

    def lease_for(self, sources: Iterable[Source], calls_per_target: int = 1) -> timedelta:
        """Long enough for every vendor call a run can make: a call (its retries and its wait for a slot
        included) never outlasts `worst_case_seconds` of its vendor's settings."""
        slowest = max(
            (
                worst_case_seconds(vendor, idempotent=True)
                for vendor in (getattr(self.settings, s.vendor.value.lower()) for s in sources)
            ),
            default=0.0,
        )
        return timedelta(seconds=slowest * calls_per_target) + LEASE_MARGIN

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
        # Refused before any vendor call while MongoDB does not answer: the journal must hold the
        # operation first. (One that fails on the way fails on the key or the journal entry, also first.)
        self.store.health.check()
        key = (record_id(caller, idempotency_key), request.fingerprint()) if idempotency_key else None
        begin = self.store.journal.begin(
            operation_id,
            kind="create",
            caller=caller,
            runner=new_runner(),
            input=request.to_doc(),
            targets=[TargetRecord(source, TargetState.PENDING, request=body) for source, body in bodies.items()],
            lease=lease,
            key=key,
        )
        if idempotency_key and key is not None:
            # The key's claim and the journal entry are written at once, one round trip rather than two.
            # No vendor is called until both landed; an entry whose key another operation holds is
            # discarded, and one found abandoned runs only once its key is known to be its own
            # (`_holds_its_key`), so that one key still makes one operation.
            writing = asyncio.gather(
                self.store.idempotency.claim_record(key[0], key[1], operation_id), begin, return_exceptions=True
            )
            senders = await self._build_while(writing, operation_id, bodies)
            claimed, begun = await writing
            if isinstance(claimed, BaseException):
                if isinstance(begun, Operation):
                    # The entry is written, and whether its key is bound to it is not known: a retry with
                    # the key (or the reconciler) finds out before anything runs.
                    raise OperationOutcomeUnknown(operation_id) from claimed
                raise claimed
            if claimed is not None:
                if isinstance(begun, Operation):
                    await self._discard(begun)
                if claimed.request_hash != key[1]:
                    raise BadUserInput(
                        "idempotencyKey: this key was first used with a different input",
                        field="idempotencyKey",
                        reason="IDEMPOTENCY_KEY_REUSED",
                    )
                operation = await self.wait_until_done(claimed.operation_id, lease, caller, idempotency_key)
                return OperationOutcome(operation, replayed=True)
        else:
            written = asyncio.ensure_future(_result_of(begin))
            senders = await self._build_while(written, operation_id, bodies)
            begun = await written
        if isinstance(begun, OperationNotStarted):
            # Known never to exist, so no vendor was called: the key must not stay bound to it.
            if idempotency_key:
                await self.store.idempotency.release(caller, idempotency_key, operation_id)
            raise OperationIncomplete(f"the operation did not start ({operation_id}); send it again") from None
        if isinstance(begun, OperationOutcomeUnknown):
            if idempotency_key:
                raise begun
            raise OperationOutcomeUnknown(operation_id, keyed=False) from None
        if isinstance(begun, BaseException):
            # The entry's existence is unknown: the key stays bound to it, so that a retry with the key
            # finds the operation (which the reconciler then runs) rather than starting another.
            raise begun
        operation = begun
        created: dict[Source, Event] = {}
        plan = dict.fromkeys(bodies, False)  # nothing was sent yet: nothing to look for
        return OperationOutcome(await self._run(operation, plan, created=created, senders=senders), created=created)

    async def _build_while(
        self, write: asyncio.Future[Any], operation_id: str, bodies: dict[Source, dict[str, Any]]
    ) -> dict[Source, CreateSender | Exception]:
        """Each target's vendor request, built (checked, serialized) while `write` is in flight: the vendors
        are called the moment it lands, never before. A request that cannot be built fails its target when
        it runs, as the create would have."""
        try:
            await asyncio.sleep(0)  # the write goes out first; its round trip is what the building hides in
        except asyncio.CancelledError:
            # The create was cancelled before it awaited the write: the write goes with it, as it would had
            # the create awaited it directly (and its outcome is not left for nobody to retrieve).
            write.cancel()
            raise
        senders: dict[Source, CreateSender | Exception] = {}
        for source, body in bodies.items():
            try:
                senders[source] = self.adapter(source).create_sender(
                    body, idempotency_key=vendor_idempotency_key(operation_id, source)
                )
            except Exception as error:
                senders[source] = error
        return senders

    async def retry(self, operation_id: str) -> Operation:
        """Run an operation's failed targets again (and the pending ones of an operation whose runner
        died); the others stay as they are."""
        self.store.health.check()
        seen = await self.store.journal.get(operation_id)
        if seen is None:
            raise NotFound(f"operationId: no operation {operation_id}")
        abandoned = seen.lease_expired(utcnow())
        if seen.state is OperationState.RUNNING and not abandoned:
            raise BadUserInput(
                f"operationId: {operation_id} is running; retry when it is done",
                field="operationId",
                reason="OPERATION_RUNNING",
            )
        if abandoned and not await self._holds_its_key(seen):
            raise NotFound(f"operationId: no operation {operation_id}")
        plan = {
            source: _outcome_unknown(target)
            for source, target in seen.targets.items()
            if target.state is TargetState.FAILED or (abandoned and target.state is TargetState.PENDING)
        }
        if not plan:
            return seen
        runner = new_runner()
        if not await self.store.journal.reopen(seen, runner, self.lease_for(plan, calls_per_target=3), list(plan)):
            raise BadUserInput(
                f"operationId: {operation_id} changed while retrying; look at it again",
                field="operationId",
                reason="OPERATION_RUNNING",
            )
        return await self._run(await self._reread(operation_id), plan)

    async def reconcile(self) -> int:
        """Take over operations abandoned by a crash, and put in the index what finished operations
        created and it lacks; the number taken over."""
        taken = 0
        for operation in await self.store.journal.abandoned():
            try:
                if await self.take_over(operation) is not None:
                    taken += 1
            except PyMongoError:
                raise  # the next round tries again
            except Exception:
                # One operation that cannot be run holds up none of the others.
                log.exception("taking over operation %s failed", operation.id)
        await self.reindex()
        return taken

    async def reindex(self) -> int:
        """Put in the index the events that finished operations created and it lacks (a replica killed
        before its write-behind landed loses them, and no vendor lists Loop calls again); the number put.

        An operation is looked at once it has been done for `INDEX_GRACE` (its own replica's write-behind
        lands within milliseconds), and marked indexed when the index holds every event it created, or
        the vendor says one no longer exists."""
        grace = min(INDEX_GRACE, timedelta(seconds=self.settings.reconcile_interval / 2))
        operations = await self.store.journal.unindexed(settled_for=grace)
        if not operations:
            return 0
        created = {
            operation.id: [
                (source, target.native_id)
                for source, target in operation.targets.items()
                if target.state is TargetState.SUCCEEDED and target.native_id
            ]
            for operation in operations
        }
        held = await self.store.events.get_keys(key for keys in created.values() for key in keys)
        missing = sorted({key for keys in created.values() for key in keys if key not in held})
        asked_at = utcnow()
        fetched = await asyncio.gather(*(self._fetch_created(source, native_id) for source, native_id in missing))
        found = [event for event in fetched if isinstance(event, Event)]
        if found:
            await self.store.events.put_many(found, fetched_at=asked_at)
        unresolved = {key for key, event in zip(missing, fetched, strict=True) if event is _UNKNOWN}
        for operation in operations:
            if not unresolved.intersection(created[operation.id]):
                await self.store.journal.mark_indexed(operation)
        if found:
            log.info("put %d events created by finished operations back in the index", len(found))
        return len(found)

    async def _fetch_created(self, source: Source, native_id: str) -> Event | object | None:
        """The event as its vendor has it now; None when the vendor says it no longer exists, `_UNKNOWN`
        when the vendor could not say (it is looked for again next round)."""
        adapter = self.adapters.get(source)
        if adapter is None:
            log.warning("re-indexing %s %s: this gateway no longer serves %s", source.value, native_id, source.value)
            return _UNKNOWN
        try:
            return await adapter.fetch(native_id)
        except VendorNotFound:
            return None
        except VendorError as error:
            log.warning("re-indexing %s %s: %s", source.value, native_id, error.message)
            return _UNKNOWN

    async def take_over(self, seen: Operation) -> Operation | None:
        """Finish an abandoned operation's pending targets; None when it finished, or another runner took
        it, since `seen` was read.

        A pending target may or may not have reached its vendor: it is re-sent where the vendor
        de-duplicates, and elsewhere the vendor is asked first whether the object exists.
        """
        pending = [s for s, t in seen.targets.items() if t.state is TargetState.PENDING]
        runner = new_runner()
        if not await self.store.journal.take_over(seen, runner, self.lease_for(pending, calls_per_target=3)):
            return None
        operation = await self._reread(seen.id)
        if not await self._holds_its_key(operation):
            return None
        log.info("taking over operation %s: targets %s", seen.id, [s.value for s in pending])
        plan = {s: True for s, t in operation.targets.items() if t.state is TargetState.PENDING}
        return await self._run(operation, plan)

    async def run_reconciler(self, stop: asyncio.Event, interval: float) -> None:
        await repeat(stop, interval, self.reconcile, "reconciliation round")

    async def wait_until_done(self, operation_id: str, lease: timedelta, caller: str, key: str) -> Operation:
        """The operation once its runner is done with it; one whose runner died is taken over here."""
        deadline = utcnow() + lease + LEASE_MARGIN
        while True:
            operation = await self.store.journal.get(operation_id)
            if operation is not None:
                if operation.state is OperationState.DONE:
                    return operation
                if operation.lease_expired(utcnow()):
                    finished = await self.take_over(operation)
                    if finished is not None:
                        return finished
                deadline = max(deadline, operation.lease_until + LEASE_MARGIN)
            elif utcnow() > deadline and await self.store.journal.settle(operation_id) is None:
                # The key's first request never wrote its journal entry, and now never can, so no vendor
                # was called: free the key for this retry's next attempt.
                await self.store.idempotency.release(caller, key, operation_id)
                raise OperationIncomplete(
                    f"the request first made with this key did not start ({operation_id}); send it again"
                )
            await asyncio.sleep(POLL_INTERVAL)

    async def _holds_its_key(self, operation: Operation) -> bool:
        """Whether an operation found abandoned may run. One whose entry was written beside its key's claim
        runs only with the key bound to it: bound here when that claim never landed, so that a retry with
        the key finds it; one whose key another operation holds never ran, and is discarded."""
        if operation.key_record is None or operation.state is not OperationState.RUNNING:
            return True
        held = await self.store.idempotency.claim_record(
            operation.key_record, operation.request_hash or "", operation.id
        )
        if held is None:
            return True
        log.info("operation %s never ran: its idempotency key is %s's; discarded", operation.id, held.operation_id)
        await self._discard(operation)
        return False

    async def _discard(self, operation: Operation) -> None:
        """Delete an entry that must never run; one left behind is discarded when it is found abandoned."""
        try:
            await self.store.journal.discard(operation)
        except PyMongoError as error:
            log.warning("operation %s, which must never run, could not be discarded yet: %s", operation.id, error)

    async def _reread(self, operation_id: str) -> Operation:
        operation = await self.store.journal.get(operation_id)
        if operation is None:  # pragma: no cover - operations are never deleted
            raise NotFound(f"operationId: no operation {operation_id}")
        return operation

    async def _run(
        self,
        operation: Operation,
        plan: dict[Source, bool],
        *,
        created: dict[Source, Event] | None = None,
        senders: dict[Source, CreateSender | Exception] | None = None,
    ) -> Operation:
        """Run the targets of `plan`, each looked for first where `plan` says its outcome is unknown (and
        sent with its request of `senders`, built already, where it has one)."""
        if created is None:
            created = {}
        #: when each target's vendor answered with its object
        answered_at: dict[Source, datetime] = {}
        outcomes = _OutcomeWriter(self, operation, expected=len(plan))

        async def run_target(source: Source) -> None:
            record = operation.targets[source]
            record.attempts += 1
            made: Event | None = None
            try:
                event, to_claim = await self._create_once(
                    operation, record, look_first=plan[source], sender=(senders or {}).get(source)
                )
                answered_at[source] = utcnow()
            except VendorError as error:
                record.state, record.failure = TargetState.FAILED, failure_of(error)
            except Exception as error:
                log.exception("operation %s, target %s", operation.id, source.value)
                record.state = TargetState.FAILED
                record.failure = TargetFailure("INTERNAL", f"internal error: {type(error).__name__}", True, True)
            else:
                record.state, record.native_id, record.failure = TargetState.SUCCEEDED, event.native_id, None
                made = event if to_claim else None
                if not to_claim:
                    created[source] = event
            await outcomes.land(record, made)
            if made is not None and record.state is TargetState.SUCCEEDED:
                created[source] = made

        await asyncio.gather(*(run_target(s) for s in plan))
        # The index takes the events made after the answer, with the reads' write-backs (until then this
        # replica reads them by id from the write-back, and its listings wait for it). Each is stamped with
        # when its vendor answered, not when it was asked: a listing begun while the create was on its
        # way may not show the object yet, and must not count it as deleted.
        for source, event in created.items():
            self.store.events.put_many_later([event], fetched_at=answered_at.get(source, utcnow()))
        if outcomes.error is not None:
            raise outcomes.error  # the journal could not be written: the reconciler finishes the operation
        if outcomes.lost_lease:
            log.warning(
                "operation %s was taken over while it ran; its outcomes stand as the journal has them", operation.id
            )
            journaled = await self._reread(operation.id)
            # The answer says an object was made only once the journal holds it: one whose outcome did not
            # land is the reconciler's to find (its claim says whose it is).
            for source, event in list(created.items()):
                if journaled.targets[source].native_id != event.native_id:
                    del created[source]
            return journaled
        return operation

    async def _create_once(
        self,
        operation: Operation,
        record: TargetRecord,
        *,
        look_first: bool,
        sender: CreateSender | Exception | None = None,
    ) -> tuple[Event, bool]:
        """Create the target's object, unless an earlier attempt may have: then look for it first. Returns
        the object, and whether it is still to be claimed with its outcome (see `_OutcomeWriter`).

        The object is claimed for the target before its outcome is journaled, and a lookup leaves out
        what other operations claimed: one vendor object, one operation target. An object found is
        claimed here; one made here is claimed with its outcome where a lookup by likeness could take it
        for another operation's (`finds_by_likeness`), and elsewhere no lookup can mistake it."""
        adapter = self.adapter(record.source)
        claims = self.store.claims

        async def taken(native_ids: Sequence[str]) -> set[str]:
            return await claims.held_by_others(record.source, native_ids, operation.id)

        if look_first and not adapter.idempotent_create:
            for _ in range(LOOKUPS):
                try:
                    found = await adapter.find_created(
                        record.request, operation_id=operation.id, since=operation.created_at, taken=taken
                    )
                except UnsupportedByVendor as error:
                    raise OutcomeUnknown(
                        adapter.vendor,
                        f"an earlier attempt on {record.source.value} may have created the object, and its "
                        "vendor offers no way to find it; check the vendor before creating it by hand",
                    ) from error
                if found is None:
                    break
                if await claims.claim(record.source, found.native_id, operation.id):
                    return found, False
                # Another operation claimed it between the look and the claim: it is theirs; look again.
        if isinstance(sender, Exception):
            raise sender
        if sender is None:
            sender = adapter.create_sender(
                record.request, idempotency_key=vendor_idempotency_key(operation.id, record.source)
            )
        return await sender(), adapter.finds_by_likeness


class _OutcomeWriter:
    """Journals a run's outcomes as they land, one write at a time: an outcome that lands while a write is
    under way goes in the next, with every other that landed meanwhile, and a write waits a moment
    (`COALESCE_SECONDS`) for the targets still out. Before each write, the objects to claim that its
    outcomes made are claimed, in one insert; the write that carries the last outcome also marks the
    operation done. Targets that answer together cost one claim and one swap, and the answer waits for no
    more than the write under way when its slowest target answered and the one that carries it."""

    def __init__(self, runner: OperationRunner, operation: Operation, expected: int) -> None:
        self.runner = runner
        self.operation = operation
        self.expected = expected
        self._landed = 0
        self._waiting: list[tuple[TargetRecord, Event | None]] = []
        self._written: set[Source] = set()
        self._lock = asyncio.Lock()
        #: set as each outcome lands, for a write waiting for company
        self._arrival = asyncio.Event()
        #: the runner no longer runs the operation (a write found another runner)
        self.lost_lease = False
        #: the first write that failed: the outcomes it carried are not journaled
        self.error: Exception | None = None

    async def land(self, record: TargetRecord, made: Event | None) -> None:
        """Journal `record`'s outcome (claiming `made` first, an object its create made); returns once the
        write that carries it is done, or failed (see `error`)."""
        self._waiting.append((record, made))
        self._arrival.set()
        async with self._lock:
            if record.source in self._written:
                return  # a write begun while this one waited carried it
            await self._company()
            batch, self._waiting = self._waiting, []
            self._written.update(landed.source for landed, _ in batch)
            self._landed += len(batch)
            await self._claim([(landed, event) for landed, event in batch if event is not None])
            # The last outcome finishes the operation in the same write, unless an outcome is missing
            # from the journal (a write failed, or did not land): the reconciler finishes it then.
            last = self._landed == self.expected and self.error is None and not self.lost_lease
            try:
                written = await self.runner.store.journal.record(
                    self.operation, *(landed for landed, _ in batch), finish=last
                )
            except Exception as error:
                self.error = self.error or error
                return
            if not written:
                self.lost_lease = True
            elif last:
                self.operation.state = OperationState.DONE

    async def _company(self) -> None:
        """Wait up to `COALESCE_SECONDS` for the outcomes of the targets still out; at once when none is."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + COALESCE_SECONDS
        while self._landed + len(self._waiting) < self.expected:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._arrival.clear()
            try:
                async with asyncio.timeout(remaining):
                    await self._arrival.wait()
            except TimeoutError:
                return

    async def _claim(self, made: list[tuple[TargetRecord, Event]]) -> None:
        """Claim the objects the creates made for their targets; a target whose object another operation
        holds, or whose claim the server could not confirm, fails instead."""
        if not made:
            return
        objects = [(record.source, event.native_id) for record, event in made]
        operation_id = self.operation.id
        try:
            held = await self.runner.store.claims.claim_many(objects, operation_id)
        except Exception as error:
            log.warning("operation %s: claiming %s failed: %s", operation_id, objects, error)
            held = dict.fromkeys(objects)
        for record, event in made:
            ours = held[(record.source, event.native_id)]
            if ours:
                continue
            record.state, record.native_id = TargetState.FAILED, None
            if ours is None:
                record.failure = TargetFailure("INTERNAL", "internal error: ClaimOutcomeUnknown", True, True)
            else:
                record.failure = failure_of(
                    VendorConflict(
                        self.runner.adapter(record.source).vendor,
                        f"{record.source.value} {event.native_id}, made for operation {operation_id}, "
                        "is claimed by another operation",
                    )
                )


async def _result_of(write: Awaitable[Operation]) -> Operation | Exception:
    try:
        return await write
    except Exception as error:
        return error


def _outcome_unknown(target: TargetRecord) -> bool:
    return target.state is TargetState.PENDING or target.failure is None or target.failure.uncertain


def new_runner() -> str:
    return uuid.uuid4().hex
