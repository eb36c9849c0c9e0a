"""Opaque paging cursors: a position in the events index, `(sort_start, _id)`, as url-safe text."""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass
from datetime import UTC, datetime

#: far more than a cursor of the longest event id this server issues; a longer one is refused unread
MAX_CURSOR_LENGTH = 4096


@dataclass(frozen=True, slots=True)
class KeysetPosition:
    """Where an event sits in the `(sort_start, _id)` order."""

    sort_start: datetime
    event_id: str

    def encode(self) -> str:
        payload = json.dumps([self.sort_start.astimezone(UTC).isoformat(), self.event_id])
        return base64.urlsafe_b64encode(payload.encode()).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> KeysetPosition:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError(f"malformed cursor {cursor[:64]!r}...: longer than any this server issues")
        try:
            padded = cursor + "=" * (-len(cursor) % 4)
            sort_start_text, event_id = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            if not isinstance(sort_start_text, str) or not isinstance(event_id, str):
                raise TypeError("cursor parts must be strings")
            sort_start = datetime.fromisoformat(sort_start_text)
            if sort_start.tzinfo is None:
                raise ValueError("its time has no zone")
            # An offset can carry a valid-looking time out of the years a datetime holds.
            sort_start = sort_start.astimezone(UTC)
        except (ValueError, TypeError, UnicodeError, binascii.Error, OverflowError, RecursionError) as exc:
            # RecursionError: JSON nested deeper than the parser follows
            shown = cursor if len(cursor) <= 64 else cursor[:64] + "..."
            raise ValueError(f"malformed cursor {shown!r}: not one this server issued") from exc
        return cls(sort_start=sort_start, event_id=event_id)
