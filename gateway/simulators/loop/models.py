"""Loop Live's records: calls (GetStream-backed) and scheduled sessions, and their wire shapes."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from ..wire import format_ts

CallStatus = Literal["scheduled", "live", "ended", "errored"]
SessionStatus = Literal["scheduled", "live", "ended", "cancelled"]
SessionKind = Literal["live", "office_hours"]

CALL_STATUSES: tuple[CallStatus, ...] = ("scheduled", "live", "ended", "errored")
SESSION_STATUSES: tuple[SessionStatus, ...] = ("scheduled", "live", "ended", "cancelled")
SESSION_KINDS: tuple[SessionKind, ...] = ("live", "office_hours")
REGISTRATION_ROLES = ("host", "participant", "guest")

RECORDING_BASE_URL = "https://recordings.loop.health"


@dataclass
class Call:
    id: str
    host_user_id: str
    title: str
    scheduled_at: datetime | None
    metadata: dict[str, Any]
    stream_call_id: str
    created_at: datetime
    updated_at: datetime
    status: CallStatus = "scheduled"
    stream_call_type: str = "default"
    started_at: datetime | None = None
    ended_at: datetime | None = None
    recording_url: str | None = None
    recording_ready_at: datetime | None = None
    # When the provider will have the recording ready; it appears on the first read at or after this.
    recording_due_at: datetime | None = None
    is_live: bool = False
    current_session_id: str | None = None
    session_ended_at: datetime | None = None

    def settle(self, now: datetime) -> None:
        if self.recording_due_at is not None and self.recording_url is None and now >= self.recording_due_at:
            self.mark_recording_ready(self.recording_due_at)

    def mark_recording_ready(self, at: datetime) -> None:
        self.recording_url = f"{RECORDING_BASE_URL}/calls/{self.id}.mp4"
        self.recording_ready_at = at
        self.recording_due_at = None
        self.updated_at = max(self.updated_at, at)

    def finish(self, now: datetime, status: CallStatus, recording_delay: timedelta | None) -> None:
        """Leave the live state: `ended` (with a recording on its way) or `errored`."""
        if self.is_live:
            self.session_ended_at = now
        self.status = status
        self.ended_at = now
        self.is_live = False
        self.current_session_id = None
        self.updated_at = now
        if recording_delay is not None and self.recording_url is None:
            self.recording_due_at = now + recording_delay

    def row(self) -> dict[str, Any]:
        """The database row: what the create answer carries."""
        return {
            "id": self.id,
            "host_user_id": self.host_user_id,
            "title": self.title,
            "scheduled_at": format_ts(self.scheduled_at),
            "started_at": format_ts(self.started_at),
            "ended_at": format_ts(self.ended_at),
            "stream_call_id": self.stream_call_id,
            "stream_call_type": self.stream_call_type,
            "recording_url": self.recording_url,
            "recording_ready_at": format_ts(self.recording_ready_at),
            "status": self.status,
            "created_at": format_ts(self.created_at),
            "updated_at": format_ts(self.updated_at),
        }

    def row_with_live(self, provider_reachable: bool) -> dict[str, Any]:
        """The row plus the provider's live status, which is null when the provider cannot be asked."""
        live = (
            {
                "is_live": self.is_live,
                "current_session_id": self.current_session_id,
                "ended_at": format_ts(self.session_ended_at),
            }
            if provider_reachable
            else None
        )
        return self.row() | {"live": live}


@dataclass
class Session:
    id: str
    host_id: str
    brand_id: str
    title: str
    scheduled_at: datetime
    max_participants: int
    kind: SessionKind
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    category: str | None = None
    status: SessionStatus = "scheduled"
    started_at: datetime | None = None
    ended_at: datetime | None = None
    stream_call_id: str | None = None
    duration_minutes: int | None = None
    recording_url: str | None = None
    # Who registered: a guest's email, or the authenticated caller's identity.
    registrants: list[str] = field(default_factory=list)

    @property
    def sort_key(self) -> tuple[str, str]:
        return (format_ts(self.scheduled_at) or "", self.id)

    def wire(self, caller: str) -> dict[str, Any]:
        return {
            "id": self.id,
            "host_id": self.host_id,
            "brand_id": self.brand_id,
            "title": self.title,
            "kind": self.kind,
            "category": self.category,
            "scheduled_at": format_ts(self.scheduled_at),
            "started_at": format_ts(self.started_at),
            "ended_at": format_ts(self.ended_at),
            "status": self.status,
            "stream_call_id": self.stream_call_id,
            "max_participants": self.max_participants,
            "duration_minutes": self.duration_minutes,
            "recording_url": self.recording_url,
            "metadata": self.metadata,
            "created_at": format_ts(self.created_at),
            "updated_at": format_ts(self.updated_at),
            "registered_count": len(self.registrants),
            "is_registered": caller in self.registrants,
        }


@dataclass
class Registration:
    id: str
    session_id: str
    registrant: str
    guest_email: str | None
    role: str
    created_at: datetime

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "session_id": self.session_id,
            "guest_email": self.guest_email,
            "role": self.role,
            "created_at": format_ts(self.created_at),
        }
