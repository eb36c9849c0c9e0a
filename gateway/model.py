"""The common event model every vendor object is normalized into.

It is the one shape the store persists, the loaders hand out and the GraphQL types render, so it stays
plain data: no I/O, no GraphQL.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class Vendor(StrEnum):
    LOOP = "LOOP"
    STREAMLOOP = "STREAMLOOP"
    LIVEPUSH = "LIVEPUSH"


class Source(StrEnum):
    LOOP_CALL = "LOOP_CALL"
    LOOP_SESSION = "LOOP_SESSION"
    STREAMLOOP_STREAM = "STREAMLOOP_STREAM"
    LIVEPUSH_STREAM = "LIVEPUSH_STREAM"

    @property
    def vendor(self) -> Vendor:
        return SOURCE_VENDOR[self]


SOURCE_VENDOR: dict[Source, Vendor] = {
    Source.LOOP_CALL: Vendor.LOOP,
    Source.LOOP_SESSION: Vendor.LOOP,
    Source.STREAMLOOP_STREAM: Vendor.STREAMLOOP,
    Source.LIVEPUSH_STREAM: Vendor.LIVEPUSH,
}


class Status(StrEnum):
    DRAFT = "DRAFT"
    SCHEDULED = "SCHEDULED"
    STARTING = "STARTING"
    LIVE = "LIVE"
    STOPPING = "STOPPING"
    ENDED = "ENDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"


LIVE_STATUSES = frozenset({Status.STARTING, Status.LIVE, Status.STOPPING})


@dataclass(slots=True)
class Recording:
    url: str | None = None
    ready_at: datetime | None = None
    native_id: str | None = None


@dataclass(slots=True)
class Event:
    """A live event of any source, in the gateway's own words.

    `extra` holds the fields only one source has, keyed by their snake_case GraphQL field names, so that
    nothing the vendor said is lost between the vendor and the schema.
    """

    source: Source
    native_id: str
    status: Status
    vendor_status: str | None
    is_live: bool
    title: str | None = None
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    started_at: datetime | None = None
    ended_at: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    host_id: str | None = None
    recordings: list[Recording] = field(default_factory=list)
    metadata: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    #: the vendor's own object, as it answered; kept in the store beside the normalized fields
    raw: dict[str, Any] | None = field(default=None, repr=False, compare=False)

    @property
    def vendor(self) -> Vendor:
        return SOURCE_VENDOR[self.source]

    def to_doc(self) -> dict[str, Any]:
        """The event as a BSON-ready document (datetimes stay datetimes). Its `metadata`, `extra` and `raw`
        are the event's own, not copies: for encoding, not for changing."""
        doc = {name: getattr(self, name) for name in _EVENT_FIELDS}
        doc["recordings"] = [{name: getattr(r, name) for name in _RECORDING_FIELDS} for r in self.recordings]
        return doc

    def extra_over(self, earlier: Mapping[str, Any]) -> dict[str, Any]:
        """`extra` once this event is written over an earlier `extra`: what this one does not know (None)
        keeps the earlier value. A listing can lack fields the detail endpoint gave (Livepush's chat and
        embed ids)."""
        return {**earlier, **{key: value for key, value in self.extra.items() if value is not None}}

    def deleted(self) -> Event:
        """This event as it is once its vendor no longer has it."""
        return dataclasses.replace(self, status=Status.CANCELLED, vendor_status="deleted", is_live=False)

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Event:
        values: dict[str, Any] = {name: doc.get(name) for name in _EVENT_FIELDS}
        values["source"] = Source(values["source"])
        values["status"] = Status(values["status"])
        values["is_live"] = bool(values["is_live"])
        values["recordings"] = [Recording(**r) for r in values["recordings"] or []]
        values["extra"] = values["extra"] or {}
        for name in _EVENT_DATES:
            values[name] = as_utc(values[name])
        for rec in values["recordings"]:
            rec.ready_at = as_utc(rec.ready_at)
        return cls(**values)


# `dataclasses.asdict` deep-copies every value, which the cache's writes paid for on every event.
_EVENT_FIELDS = tuple(f.name for f in dataclasses.fields(Event))
_RECORDING_FIELDS = tuple(f.name for f in dataclasses.fields(Recording))
_EVENT_DATES = ("scheduled_start", "scheduled_end", "started_at", "ended_at", "created_at", "updated_at")


def as_utc(value: datetime | None) -> datetime | None:
    """BSON datetimes come back naive (in UTC); give them their zone back."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def utcnow() -> datetime:
    return datetime.now(UTC)
