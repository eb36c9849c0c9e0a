"""Loop Live's data, in memory, with the moves a call and a session can make."""

from __future__ import annotations

import math
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from ..errors import SimError
from ..wire import decode_cursor, encode_cursor
from .models import RECORDING_BASE_URL, Call, Registration, Session, SessionStatus


@dataclass(frozen=True)
class SessionFilter:
    brand_id: str | None = None
    host_id: str | None = None
    status: str | None = None
    kind: str | None = None
    upcoming: bool | None = None

    def admits(self, session: Session, now: datetime) -> bool:
        if self.brand_id is not None and session.brand_id != self.brand_id:
            return False
        if self.host_id is not None and session.host_id != self.host_id:
            return False
        if self.status is not None and session.status != self.status:
            return False
        if self.kind is not None and session.kind != self.kind:
            return False
        if self.upcoming is not None:
            is_upcoming = session.status == "scheduled" and session.scheduled_at > now
            return is_upcoming == self.upcoming
        return True


class LoopStore:
    def __init__(self) -> None:
        self.calls: dict[str, Call] = {}
        self.sessions: dict[str, Session] = {}
        self.registrations: list[Registration] = []

    def call(self, call_id: str, now: datetime) -> Call:
        call = self.calls.get(call_id)
        if call is None:
            raise SimError(404, "NOT_FOUND", f"call {call_id} not found")
        call.settle(now)
        return call

    def session(self, session_id: str) -> Session:
        session = self.sessions.get(session_id)
        if session is None:
            raise SimError(404, "NOT_FOUND", f"session {session_id} not found")
        return session

    def start_provider_session(self, call: Call, now: datetime, session_id: str | None = None) -> None:
        """The provider reports a session started: the call goes (or stays) live."""
        if call.status in ("ended", "errored"):
            raise SimError(409, "CONFLICT", f"call {call.id} is {call.status}")
        if call.is_live:
            raise SimError(409, "CONFLICT", f"call {call.id} already has a running session")
        call.status = "live"
        call.started_at = call.started_at or now
        call.is_live = True
        call.current_session_id = session_id or str(uuid.uuid4())
        call.session_ended_at = None
        call.updated_at = now

    def end_call(self, call: Call, now: datetime, recording_delay: timedelta) -> None:
        """End a call; ending one that is already over changes nothing."""
        if call.status in ("scheduled", "live"):
            call.finish(now, "ended", recording_delay)

    def fail_call(self, call: Call, now: datetime) -> None:
        if call.status not in ("scheduled", "live"):
            raise SimError(409, "CONFLICT", f"call {call.id} is {call.status}")
        call.finish(now, "errored", None)

    def set_session_status(self, session: Session, status: SessionStatus, now: datetime) -> None:
        session.status = status
        session.updated_at = now
        if status == "live":
            session.started_at = session.started_at or now
            session.stream_call_id = session.stream_call_id or uuid.uuid4().hex
            session.ended_at = None
        elif status == "ended":
            session.ended_at = now
            if session.started_at is not None:
                session.duration_minutes = math.ceil((now - session.started_at).total_seconds() / 60)
                session.recording_url = f"{RECORDING_BASE_URL}/sessions/{session.id}.mp4"

    def list_sessions(
        self, wanted: SessionFilter, now: datetime, limit: int, cursor: str | None
    ) -> tuple[list[Session], str | None]:
        """One page in (scheduled_at, id) order, and the cursor of the next page (None on the last)."""
        after: tuple[str, str] | None = None
        if cursor is not None:
            position = decode_cursor(cursor, 2)
            if position is None:
                raise SimError(400, "VALIDATION_FAILED", "cursor: not a cursor this endpoint issued")
            after = (position[0], position[1])
        matching = sorted(
            (s for s in self.sessions.values() if wanted.admits(s, now) and (after is None or s.sort_key > after)),
            key=lambda s: s.sort_key,
        )
        page = matching[:limit]
        next_cursor = encode_cursor(list(page[-1].sort_key)) if len(matching) > limit else None
        return page, next_cursor
