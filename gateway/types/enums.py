"""The schema's enums are the model's enums, registered with Strawberry under their schema names."""

from __future__ import annotations

from collections.abc import Mapping
from enum import EnumMeta, StrEnum
from typing import TypeVar

import strawberry
from strawberry.types.enum import StrawberryEnumDefinition

from gateway import model
from gateway.vendors import resilience

E = TypeVar("E", bound=EnumMeta)


def described_enum(cls: E, name: str, description: str, values: Mapping[str, str]) -> E:
    """Register `cls` as the schema enum `name`, each value with its description (every one needs one)."""
    strawberry.enum(cls, name=name, description=description)
    definition: StrawberryEnumDefinition = cls.__strawberry_definition__  # type: ignore[attr-defined]
    missing = [value.name for value in definition.values if value.name not in values]
    unknown = sorted(set(values) - {value.name for value in definition.values})
    if missing or unknown:
        raise TypeError(f"{name}: values without a description {missing}, descriptions of no value {unknown}")
    for value in definition.values:
        value.description = values[value.name]
    return cls


Vendor = described_enum(
    model.Vendor,
    "Vendor",
    "A company whose API the gateway reads.",
    {
        "LOOP": "Loop Live: calls (GetStream Video-backed) and scheduled sessions.",
        "STREAMLOOP": "Streamloop: 24/7 playlist streams.",
        "LIVEPUSH": "Livepush: multistreaming streams.",
    },
)
EventSource = described_enum(
    model.Source,
    "EventSource",
    "A kind of live event at one vendor; each has its own type implementing `LiveEvent`.",
    {
        "LOOP_CALL": "A Loop Live call (`LoopCall`).",
        "LOOP_SESSION": "A scheduled Loop Live session or office hours (`LoopSession`).",
        "STREAMLOOP_STREAM": "A Streamloop stream (`StreamloopStream`).",
        "LIVEPUSH_STREAM": "A Livepush stream (`LivepushStream`).",
    },
)
LiveEventStatus = described_enum(
    model.Status,
    "LiveEventStatus",
    "One lifecycle for every source; the vendor's own word is in `vendorStatus`.",
    {
        "DRAFT": "Exists but is neither scheduled nor started (also a vendor state the gateway does not know). "
        "A Livepush stream is always DRAFT until deleted: Livepush reports no schedule or on-air state.",
        "SCHEDULED": "Has a scheduled start and has not started.",
        "STARTING": "Asked to start and getting ready (Streamloop `preparing` or `activating`); `isLive` is true.",
        "LIVE": "On air (Streamloop `active`, or `failing` while it still broadcasts).",
        "STOPPING": "Asked to stop and not yet stopped (Streamloop `stopping`).",
        "ENDED": "Was live and has stopped; a recording may follow.",
        "FAILED": "The vendor gave up on it (Loop `errored`, Streamloop `failed`).",
        "CANCELLED": "Cancelled or deleted; the index keeps it in this state.",
    },
)
CircuitState = described_enum(
    resilience.CircuitState,
    "CircuitState",
    "A vendor's circuit breaker: CLOSED calls the vendor, OPEN does not, HALF_OPEN lets one probe by.",
    {
        "CLOSED": "Calls go to the vendor.",
        "OPEN": "Too many failures in a row: calls fail at once without reaching the vendor, until the reset time.",
        "HALF_OPEN": "The reset time has passed: one probe call goes through; its outcome closes or reopens it.",
    },
)


class ServedFrom(StrEnum):
    CACHE = "CACHE"
    VENDOR = "VENDOR"


described_enum(
    ServedFrom,
    "ServedFrom",
    "Where an event's data came from in this response.",
    {
        "CACHE": "The gateway's index in MongoDB (fresh enough, or the vendor could not be reached: see `stale`).",
        "VENDOR": "The vendor's API, asked while answering this request.",
    },
)
