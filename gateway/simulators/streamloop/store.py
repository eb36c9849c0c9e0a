"""Streamloop's streams, in memory, and the lifecycle verbs with their legality rules."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from ulid import ULID

from ..config import SimulatorConfig
from ..errors import SimError
from ..wire import decode_cursor, encode_cursor, format_ts
from .models import (
    DEFAULT_SETTINGS,
    IMMUTABLE_STATES,
    SCHEDULABLE_STATES,
    STARTABLE_STATES,
    STOPPABLE_STATES,
    PhaseTimings,
    Stream,
)

ID_PREFIX = "stream_"


def new_stream_id(now: datetime) -> str:
    return ID_PREFIX + str(ULID.from_datetime(now))


def _illegal(stream: Stream, verb: str) -> SimError:
    return SimError(409, "STREAM_ILLEGAL_TRANSITION", f"cannot {verb} a stream that is {stream.state}")


class StreamloopStore:
    def __init__(self, config: SimulatorConfig) -> None:
        self.timings = PhaseTimings(
            preparing=timedelta(seconds=config.preparing_seconds),
            activating=timedelta(seconds=config.activating_seconds),
            stopping=timedelta(seconds=config.stopping_seconds),
        )
        self.streams: dict[str, Stream] = {}

    def create(self, settings: dict[str, Any], now: datetime) -> Stream:
        stream = Stream(
            id=new_stream_id(now),
            created_at=now,
            updated_at=now,
            state="scheduled" if settings.get("scheduleStartAt") else "draft",
            state_since=now,
            settings=DEFAULT_SETTINGS | settings,
        )
        self.streams[stream.id] = stream
        return stream

    def get(self, stream_id: str, now: datetime) -> Stream:
        stream = self.streams.get(stream_id)
        if stream is None:
            raise SimError(404, "NOT_FOUND", f"stream {stream_id} not found")
        stream.settle(now, self.timings)
        return stream

    def page(self, now: datetime, limit: int, cursor: str | None) -> tuple[list[Stream], str | None]:
        """One page in creation order, and the cursor of the next (None on the last)."""
        after: tuple[str, str] | None = None
        if cursor:
            position = decode_cursor(cursor, 2)
            if position is None:
                raise SimError(400, "VALIDATION_FAILED", "cursor: not a cursor this endpoint issued")
            after = (position[0], position[1])
        ordered = sorted(self.streams.values(), key=_sort_key)
        remaining = [s for s in ordered if after is None or _sort_key(s) > after]
        page = remaining[:limit]
        for stream in page:
            stream.settle(now, self.timings)
        next_cursor = encode_cursor(list(_sort_key(page[-1]))) if len(remaining) > limit else None
        return page, next_cursor

    def update(self, stream: Stream, changes: dict[str, Any], now: datetime) -> None:
        if stream.state in IMMUTABLE_STATES:
            raise SimError(409, "IMMUTABLE_WHILE_LIVE", f"a stream that is {stream.state} cannot be changed")
        stream.settings.update(changes)
        stream.updated_at = now
        # The schedule decides between draft and scheduled; other states keep their word.
        if stream.state == "draft" and stream.settings["scheduleStartAt"] is not None:
            stream.move_to("scheduled", now)
        elif stream.state == "scheduled" and stream.settings["scheduleStartAt"] is None:
            stream.move_to("draft", now)

    def delete(self, stream: Stream) -> None:
        del self.streams[stream.id]

    def start(self, stream: Stream, now: datetime) -> None:
        if stream.state not in STARTABLE_STATES:
            raise _illegal(stream, "start")
        stream.move_to("preparing" if stream.can_stream else "invalid", now)

    def stop(self, stream: Stream, now: datetime) -> None:
        if stream.state not in STOPPABLE_STATES:
            raise _illegal(stream, "stop")
        stream.move_to("stopping", now)

    def schedule(self, stream: Stream, start_at: datetime, end_at: datetime | None, now: datetime) -> None:
        if stream.state not in SCHEDULABLE_STATES:
            raise _illegal(stream, "schedule")
        stream.settings["scheduleStartAt"] = start_at
        stream.settings["scheduleEndAt"] = end_at
        stream.move_to("scheduled", now)


def _sort_key(stream: Stream) -> tuple[str, str]:
    return (format_ts(stream.created_at) or "", stream.id)
