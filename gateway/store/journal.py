"""The operation journal: every mutation that calls vendors is written here before the first call,
and each target's outcome as it lands, so that a crash leaves nothing half-known.

One document per operation; targets live in a sub-document keyed by source, so that recording one
outcome is a single-document `$set` of `targets.<SOURCE>` and concurrent outcomes never overwrite
each other.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from pymongo.asynchronous.cursor import AsyncCursor
from pymongo.errors import ConnectionFailure, DuplicateKeyError, PyMongoError

from gateway.errors import StoreUnavailable
from gateway.model import Source, as_utc, utcnow
from gateway.store.mongo import (
    Database,
    compare_and_swap,
    ensure_index,
    new_write_token,
    to_micros,
    utc_collection,
)

log = logging.getLogger(__name__)


class TargetState(StrEnum):
    PENDING = "PENDING"  # not sent yet, or sent with no answer yet
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


class OperationState(StrEnum):
    RUNNING = "RUNNING"
    DONE = "DONE"


@dataclass(slots=True)
class TargetFailure:
    code: str
    message: str
    retryable: bool
    #: True when the vendor may have made the object all the same (a timeout, a broken answer)
    uncertain: bool = False


@dataclass(slots=True)
class TargetRecord:
    source: Source
    state: TargetState
    native_id: str | None = None
    failure: TargetFailure | None = None
    attempts: int = 0
    #: what the target was asked to create, already validated against the vendor's contract
    request: dict[str, Any] = field(default_factory=dict)

    def to_doc(self) -> dict[str, Any]:
        return {
            "source": self.source.value,
            "state": self.state.value,
            "native_id": self.native_id,
            "failure": None
            if self.failure is None
            else {
                "code": self.failure.code,
                "message": self.failure.message,
                "retryable": self.failure.retryable,
                "uncertain": self.failure.uncertain,
            },
            "attempts": self.attempts,
            "request": self.request,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> TargetRecord:
        failure = doc.get("failure")
        return cls(
            source=Source(doc["source"]),
            state=TargetState(doc["state"]),
            native_id=doc.get("native_id"),
            failure=TargetFailure(
                failure["code"], failure["message"], bool(failure["retryable"]), bool(failure.get("uncertain"))
            )
            if failure
            else None,
            attempts=int(doc.get("attempts") or 0),
            request=doc.get("request") or {},
        )


@dataclass(slots=True)
class Operation:
    id: str
    kind: str
    caller: str
    #: who runs the operation now; every journal write of a runner is fenced by it
    runner: str
    state: OperationState
    created_at: datetime
    updated_at: datetime
    lease_until: datetime
    targets: dict[Source, TargetRecord]
    input: dict[str, Any] = field(default_factory=dict)
    #: the document's revision: every write is a compare-and-swap on it (None: stored before entries had one)
    rev: int | None = None
    #: whether the events it created are known to be in the index (False until the reconciler looked)
    indexed: bool = True
    #: the idempotency record its key was claimed in, written beside the entry (None: no key, or the key
    #: was bound before the entry was written), and the request's fingerprint
    key_record: str | None = None
    request_hash: str | None = None

    def lease_expired(self, now: datetime) -> bool:
        return self.state is OperationState.RUNNING and self.lease_until <= now

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Operation:
        return cls(
            id=doc["_id"],
            kind=doc["kind"],
            caller=doc["caller"],
            runner=doc["runner"],
            state=OperationState(doc["state"]),
            created_at=as_utc(doc["created_at"]),  # type: ignore[arg-type]
            updated_at=as_utc(doc["updated_at"]),  # type: ignore[arg-type]
            lease_until=as_utc(doc["lease_until"]),  # type: ignore[arg-type]
            targets={Source(k): TargetRecord.from_doc(v) for k, v in (doc.get("targets") or {}).items()},
            input=doc.get("input") or {},
            rev=None if doc.get("rev") is None else int(doc["rev"]),
            indexed=bool(doc.get("indexed", True)),
            key_record=(doc.get("idempotency") or {}).get("record"),
            request_hash=(doc.get("idempotency") or {}).get("request_hash"),
        )


class OperationNotStarted(Exception):
    """The operation's journal entry is known not to exist, and never will: no vendor was called for it."""


#: the state of the placeholder that stands for an operation known never to have started
_VOID = "VOID"
#: what finishing an operation sets
_FINISHED: dict[str, Any] = {"state": OperationState.DONE.value, "indexed": False}


class OperationJournal:
    """Every write is a compare-and-swap on `_id` and the integer `rev` (see `compare_and_swap`): whether
    a runner may write (it still runs the operation; its lease ran out) is decided on the document it read,
    and the swap fails when anyone wrote in between."""

    def __init__(self, db: Database) -> None:
        self.collection = utc_collection(db, "operations")

    async def ensure_indexes(self) -> None:
        await ensure_index(self.collection, [("state", 1), ("lease_until_us", 1)])
        await ensure_index(self.collection, [("state", 1), ("indexed", 1), ("updated_us", 1)])

    async def begin(
        self,
        operation_id: str,
        *,
        kind: str,
        caller: str,
        runner: str,
        input: dict[str, Any],
        targets: list[TargetRecord],
        lease: timedelta,
        key: tuple[str, str] | None = None,
    ) -> Operation:
        """Write the operation's entry (with `key`, the idempotency record claimed beside it and the
        request's fingerprint). An insert whose reply is lost is read back by its `_id`; where the entry is
        absent, a placeholder takes the `_id` so that the insert can never land later, and
        `OperationNotStarted` says so. Any other failure leaves the outcome unknown (`PyMongoError`)."""
        now = utcnow()
        token = new_write_token()
        doc = {
            "_id": operation_id,
            "rev": 1,
            "write_token": token,
            "kind": kind,
            "caller": caller,
            "runner": runner,
            "state": OperationState.RUNNING.value,
            "created_at": now,
            "updated_at": now,
            "updated_us": to_micros(now),
            "lease_until": now + lease,
            "lease_until_us": to_micros(now + lease),
            "indexed": True,
            "input": input,
            "targets": {t.source.value: t.to_doc() for t in targets},
        }
        if key is not None:
            doc["idempotency"] = {"record": key[0], "request_hash": key[1]}
        try:
            await self.collection.insert_one(doc)
        except (ConnectionFailure, DuplicateKeyError):
            # Lost reply (or a driver's retry of an insert that had landed): read back what the server holds.
            try:
                found = await self.settle(operation_id)
            except OperationOutcomeUnknown:
                raise
            except PyMongoError:
                raise OperationOutcomeUnknown(operation_id) from None
            if found is None:
                raise OperationNotStarted(operation_id) from None
            if found.runner != runner:  # pragma: no cover - operation ids are ULIDs, never reused
                raise
            return found
        except PyMongoError:
            # The server may have applied it (a timeout says nothing either way).
            raise OperationOutcomeUnknown(operation_id) from None
        return Operation.from_doc(doc)

    async def settle(self, operation_id: str) -> Operation | None:
        """The operation `operation_id`, or None when it is known never to exist: an entry not found is
        made impossible by a placeholder under its `_id`, which an insert still on its way then cannot
        overwrite. Raises `PyMongoError` when the server cannot tell."""
        doc = await self.collection.find_one({"_id": operation_id})
        if doc is None:
            try:
                await self.collection.insert_one({"_id": operation_id, "state": _VOID, "rev": 0, "at": utcnow()})
                return None
            except DuplicateKeyError:
                pass
            except ConnectionFailure:
                pass  # read back below: the placeholder, or the entry, is there now
            doc = await self.collection.find_one({"_id": operation_id})
            if doc is None:
                raise OperationOutcomeUnknown(operation_id)
        if doc.get("state") == _VOID:
            return None
        return Operation.from_doc(doc)

    async def record(self, operation: Operation, *targets: TargetRecord, finish: bool = False) -> bool:
        """Write the outcomes of `targets` in one swap, and with `finish` mark the operation done in the
        same swap (see `finish`); False when `operation.runner` no longer runs the operation.

        A swap that lost to another writer's is tried again on the revision read back, as long as the
        runner is unchanged."""
        changes: dict[str, Any] = {f"targets.{target.source.value}": target.to_doc() for target in targets}
        if finish:
            changes |= _FINISHED
        return await self._write_as_runner(operation, changes)

    async def finish(self, operation: Operation) -> bool:
        """Mark the operation done; False when `operation.runner` no longer runs it. The index is not yet
        known to hold what it created: the reconciler looks (`unindexed`)."""
        return await self._write_as_runner(operation, dict(_FINISHED))

    async def _write_as_runner(self, operation: Operation, changes: dict[str, Any]) -> bool:
        while True:
            rev = operation.rev
            now = utcnow()
            if await compare_and_swap(
                self.collection, operation.id, rev, {**changes, "updated_at": now, "updated_us": to_micros(now)}
            ):
                operation.rev = max(operation.rev or 0, (rev or 0) + 1)
                return True
            current = await self.get(operation.id)
            if current is None or current.runner != operation.runner or current.rev == rev:
                return False
            operation.rev = current.rev

    async def take_over(self, seen: Operation, runner: str, lease: timedelta) -> bool:
        """Become the runner of an operation whose runner's lease ran out, as it was when `seen` was read;
        False when it had not run out, or it finished, or someone else took it, meanwhile."""
        now = utcnow()
        if not seen.lease_expired(now):
            return False
        return await compare_and_swap(self.collection, seen.id, seen.rev, self._runner_changes(runner, now, lease))

    async def reopen(self, seen: Operation, runner: str, lease: timedelta, targets: list[Source]) -> bool:
        """Take a finished (or abandoned) operation back to run `targets` again, marking them pending in the
        same write, so that a crash during the retry leaves them for the reconciler."""
        now = utcnow()
        if not (seen.state is OperationState.DONE or seen.lease_expired(now)):
            return False
        changes = self._runner_changes(runner, now, lease)
        changes["state"] = OperationState.RUNNING.value
        for source in targets:
            changes[f"targets.{source.value}.state"] = TargetState.PENDING.value
        return await compare_and_swap(self.collection, seen.id, seen.rev, changes)

    @staticmethod
    def _runner_changes(runner: str, now: datetime, lease: timedelta) -> dict[str, Any]:
        return {
            "runner": runner,
            "lease_until": now + lease,
            "lease_until_us": to_micros(now + lease),
            "updated_at": now,
            "updated_us": to_micros(now),
        }

    async def discard(self, seen: Operation) -> bool:
        """Delete an entry that never ran and never will (its idempotency key is another operation's), unless
        it changed since `seen`. Its insert is known to have landed, so no later insert can bring it back."""
        deleted = await self.collection.delete_one({"_id": seen.id, "rev": seen.rev})
        return deleted.deleted_count == 1

    async def mark_indexed(self, seen: Operation) -> bool:
        """Record that the index holds what the operation created, unless it changed since `seen`."""
        return await compare_and_swap(self.collection, seen.id, seen.rev, {"indexed": True})

    async def get(self, operation_id: str) -> Operation | None:
        doc = await self.collection.find_one({"_id": operation_id})
        return None if doc is None or doc.get("state") == _VOID else Operation.from_doc(doc)

    async def abandoned(self, limit: int = 100) -> list[Operation]:
        """Running operations whose runner's lease ran out: it crashed mid-fan-out."""
        now = utcnow()
        running = OperationState.RUNNING.value
        expired = self.collection.find({"state": running, "lease_until_us": {"$lte": to_micros(now)}}).limit(limit)
        found = await _readable(expired)
        # Entries written before leases were kept in microseconds: their expiry is read from the document.
        found += await _readable(self.collection.find({"state": running, "lease_until_us": None}).limit(limit))
        return [operation for operation in found if operation.lease_expired(now)][:limit]

    async def unindexed(self, settled_for: timedelta, limit: int = 100) -> list[Operation]:
        """Finished operations, done for at least `settled_for`, whose events the index is not known to hold."""
        now = utcnow()
        cursor = self.collection.find(
            {
                "state": OperationState.DONE.value,
                "indexed": False,
                "updated_us": {"$lte": to_micros(now - settled_for)},
            }
        ).limit(limit)
        return await _readable(cursor)


async def _readable(cursor: AsyncCursor[dict[str, Any]]) -> list[Operation]:
    """The operations of `cursor`; an entry that cannot be read is logged and left out, so that it holds
    up none of the others (the reconciler reads these every round)."""
    operations = []
    async for doc in cursor:
        try:
            operations.append(Operation.from_doc(doc))
        except (KeyError, ValueError, TypeError):
            log.exception("operation %s cannot be read; left as it is", doc.get("_id"))
    return operations


class OperationOutcomeUnknown(StoreUnavailable):
    """The server could not say whether the operation's journal entry exists. If it does, the operation
    runs (the reconciler takes it over), so the answer names it. With an idempotency key, which stays bound
    to it, sending the request again is safe: the retry finds the operation. Without one, a retry could make
    a second object, so the caller is told to look the operation up instead."""

    def __init__(self, operation_id: str, *, keyed: bool = True) -> None:
        if keyed:
            advice = "send the request again with the same idempotency key"
        else:
            advice = (
                f'it may still run: look it up with liveEventOperation(id: "{operation_id}") once MongoDB '
                "answers, rather than sending it again (an idempotency key makes sending it again safe)"
            )
        super().__init__(f"MongoDB could not say whether operation {operation_id} was written; {advice}")
        self.operation_id = operation_id
        self.retryable = keyed

    def extensions(self) -> dict[str, Any]:
        ext = super().extensions()
        ext["operationId"] = self.operation_id
        return ext
