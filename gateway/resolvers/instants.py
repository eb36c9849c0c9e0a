"""Instants given as input, made UTC before anything stores or compares them."""

from __future__ import annotations

from datetime import UTC, datetime

from gateway.errors import BadUserInput


def utc_instant(value: datetime | None, field: str) -> datetime | None:
    """`value` in UTC (an instant without an offset is taken as UTC); an instant whose offset carries it
    outside the years 1-9999 once made UTC (`0001-01-01T00:00:00+01:00`) is refused, naming `field`."""
    if value is None:
        return None
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    try:
        return value.astimezone(UTC)
    except OverflowError:
        raise BadUserInput(
            f"{field}: {value.isoformat()} is outside the instants a date can hold (years 1 to 9999 in UTC)",
            field=field,
        ) from None
