"""The schema's enums are the model's enums, registered with Strawberry under their schema names."""

from __future__ import annotations

from enum import StrEnum

import strawberry

from gateway import model
from gateway.vendors import resilience

Vendor = strawberry.enum(model.Vendor, name="Vendor", description="A company whose API the gateway reads.")
EventSource = strawberry.enum(model.Source, name="EventSource", description="A kind of live event at one vendor.")
LiveEventStatus = strawberry.enum(
    model.Status,
    name="LiveEventStatus",
    description="One lifecycle for every source; the vendor's own word is in `vendorStatus`.",
)
CircuitState = strawberry.enum(
    resilience.CircuitState,
    name="CircuitState",
    description="A vendor's circuit breaker: CLOSED calls the vendor, OPEN does not, HALF_OPEN lets one probe by.",
)


@strawberry.enum(description="Where an event's data came from in this response.")
class ServedFrom(StrEnum):
    CACHE = "CACHE"
    VENDOR = "VENDOR"
