"""The operation journal: every mutation that calls vendors is written here before the first call,
and each target's outcome as it lands, so that a crash leaves nothing half-known.

One document per operation; targets live in a sub-document keyed by source, so that recording one
outcome is a single-document `$set` of `targets.<SOURCE>` and concurrent outcomes never overwrite
each other.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from gateway.model import Source, as_utc, utcnow
from gateway.store.mongo import FORCE_DOCUMENT_REWRITE, Database, ensure_index, utc_collection


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
        )


class OperationJournal:
    def __init__(self, db: Database) -> None:
        self.collection = utc_collection(db, "operations")

    async def ensure_indexes(self) -> None:
        await ensure_index(self.collection, [("state", 1), ("lease_until", 1)])

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
    ) -> Operation:
        now = utcnow()
        doc = {
            "_id": operation_id,
            "kind": kind,
            "caller": caller,
            "runner": runner,
            "state": OperationState.RUNNING.value,
            "created_at": now,
            "updated_at": now,
            "lease_until": now + lease,
            "input": input,
            "targets": {t.source.value: t.to_doc() for t in targets},
        }
        await self.collection.insert_one(doc)
        return Operation.from_doc(doc)

    async def record(self, operation_id: str, runner: str, target: TargetRecord) -> bool:
        """Write one target's outcome; False when `runner` no longer runs the operation."""
        result = await self.collection.update_one(
            {"_id": operation_id, "runner": runner},
            {
                "$set": {f"targets.{target.source.value}": target.to_doc(), "updated_at": utcnow()},
                **FORCE_DOCUMENT_REWRITE,
            },
        )
        return result.matched_count == 1

    async def finish(self, operation_id: str, runner: str) -> bool:
        result = await self.collection.update_one(
            {"_id": operation_id, "runner": runner},
            {"$set": {"state": OperationState.DONE.value, "updated_at": utcnow()}, **FORCE_DOCUMENT_REWRITE},
        )
        return result.matched_count == 1

    async def take_over(self, seen: Operation, runner: str, lease: timedelta) -> bool:
        """Become the runner of an operation whose runner's lease ran out, as it was when `seen` was read;
        False when it finished, or someone else took it, meanwhile."""
        now = utcnow()
        result = await self.collection.update_one(
            {
                "_id": seen.id,
                "runner": seen.runner,
                "state": OperationState.RUNNING.value,
                "lease_until": {"$lte": now},
            },
            {"$set": {"runner": runner, "lease_until": now + lease, "updated_at": now}, **FORCE_DOCUMENT_REWRITE},
        )
        return result.matched_count == 1

    async def reopen(self, seen: Operation, runner: str, lease: timedelta, targets: list[Source]) -> bool:
        """Take a finished (or abandoned) operation back to run `targets` again, marking them pending in the
        same write, so that a crash during the retry leaves them for the reconciler."""
        now = utcnow()
        changes: dict[str, Any] = {
            "state": OperationState.RUNNING.value,
            "runner": runner,
            "lease_until": now + lease,
            "updated_at": now,
        }
        for source in targets:
            changes[f"targets.{source.value}.state"] = TargetState.PENDING.value
        result = await self.collection.update_one(
            {
                "_id": seen.id,
                "runner": seen.runner,
                "$or": [{"state": OperationState.DONE.value}, {"lease_until": {"$lte": now}}],
            },
            {"$set": changes, **FORCE_DOCUMENT_REWRITE},
        )
        return result.matched_count == 1

    async def get(self, operation_id: str) -> Operation | None:
        doc = await self.collection.find_one({"_id": operation_id})
        return None if doc is None else Operation.from_doc(doc)

    async def abandoned(self, limit: int = 100) -> list[Operation]:
        """Running operations whose runner's lease ran out: it crashed mid-fan-out."""
        cursor = self.collection.find({"state": OperationState.RUNNING.value, "lease_until": {"$lte": utcnow()}}).limit(
            limit
        )
        return [Operation.from_doc(doc) async for doc in cursor]
