"""Streamloop's stream: its settings, its ten states and the moves between them."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal, get_args

from ..validation import FieldSpec
from ..wire import format_ts

StreamState = Literal[
    "draft",
    "invalid",
    "scheduled",
    "preparing",
    "activating",
    "active",
    "failing",
    "failed",
    "stopping",
    "stopped",
]
STATES: tuple[StreamState, ...] = get_args(StreamState)
# A stream in one of these is on air (or on its way on or off) and its settings cannot change.
IMMUTABLE_STATES = frozenset({"preparing", "activating", "active", "failing", "stopping"})
STARTABLE_STATES = frozenset({"draft", "scheduled", "stopped", "failed", "invalid"})
STOPPABLE_STATES = frozenset({"preparing", "activating", "active", "failing"})
SCHEDULABLE_STATES = STARTABLE_STATES

QUALITIES = ("q_720p", "q_1080p", "q_1440p", "q_2160p")
FRAMERATES = ("f_24", "f_25", "f_30", "f_60")

# CreateStreamInput, field for field; updates take the same fields.
STREAM_INPUT_FIELDS = (
    FieldSpec("agentModeEnabled", "boolean", nullable=True),
    FieldSpec("audioUploadObjectID", "string", nullable=True),
    FieldSpec("destinationID", "string", nullable=True),
    FieldSpec("framerate", "string", nullable=True, enum=FRAMERATES),
    FieldSpec("name", "string", nullable=True),
    FieldSpec("playlistIDs", "string_array"),
    FieldSpec("preparedPlaylistIDs", "string_array"),
    FieldSpec("quality", "string", nullable=True, enum=QUALITIES),
    FieldSpec("runBackupStream", "boolean", nullable=True),
    FieldSpec("scheduleEndAt", "date_time", nullable=True),
    FieldSpec("scheduleStartAt", "date_time", nullable=True),
    FieldSpec("streamBackend", "string", nullable=True, enum=("ffmpeg", "manifest")),
    FieldSpec("streamDestination", "string", nullable=True, enum=("youtube",)),
    FieldSpec("streamDuration", "integer", nullable=True),
    FieldSpec("streamKey", "string", nullable=True),
    FieldSpec("streamStateID", "string", nullable=True),
    FieldSpec("videoUploadObjectID", "string", nullable=True),
    FieldSpec("youtubeSettingsID", "string", nullable=True),
)
SCHEDULE_FIELDS = (
    FieldSpec("scheduleStartAt", "date_time", required=True),
    FieldSpec("scheduleEndAt", "date_time", nullable=True),
)

DEFAULT_SETTINGS: dict[str, Any] = {
    "name": None,
    "quality": None,
    "framerate": None,
    "destinationID": None,
    "playlistIDs": [],
    "preparedPlaylistIDs": [],
    "streamDuration": 0,  # the account default: never expires
    "scheduleStartAt": None,
    "scheduleEndAt": None,
    "agentModeEnabled": False,
    "runBackupStream": False,
    "streamBackend": None,
    "streamDestination": None,
    "streamKey": None,
    "audioUploadObjectID": None,
    "videoUploadObjectID": None,
    "youtubeSettingsID": None,
    "streamStateID": None,
}


@dataclass(frozen=True)
class PhaseTimings:
    preparing: timedelta
    activating: timedelta
    stopping: timedelta


@dataclass
class Stream:
    id: str
    created_at: datetime
    updated_at: datetime
    state: StreamState
    state_since: datetime
    settings: dict[str, Any] = field(default_factory=lambda: dict(DEFAULT_SETTINGS))
    started_at: datetime | None = None
    stopped_at: datetime | None = None

    @property
    def can_stream(self) -> bool:
        """A stream needs somewhere to send its picture: a destination, or (deprecated) a stream key."""
        return bool(self.settings["destinationID"] or self.settings["streamKey"])

    def move_to(self, state: StreamState, at: datetime) -> None:
        self.state = state
        self.state_since = at
        self.updated_at = max(self.updated_at, at)
        if state == "active" and self.started_at is None:
            self.started_at = at
        elif state == "stopped":
            self.stopped_at = at
        elif state == "preparing":
            # A new run: its own start and stop times.
            self.started_at = None
            self.stopped_at = None

    def settle(self, now: datetime, timings: PhaseTimings) -> None:
        """Take every timed step that is due by `now`, each at the instant it fell due."""
        while True:
            if self.state == "preparing" and now >= self.state_since + timings.preparing:
                self.move_to("activating", self.state_since + timings.preparing)
            elif self.state == "activating" and now >= self.state_since + timings.activating:
                self.move_to("active", self.state_since + timings.activating)
            elif self.state == "stopping" and now >= self.state_since + timings.stopping:
                self.move_to("stopped", self.state_since + timings.stopping)
            else:
                return

    def wire(self) -> dict[str, Any]:
        s = self.settings
        return {
            "id": self.id,
            "createdAt": format_ts(self.created_at),
            "updatedAt": format_ts(self.updated_at),
            "name": s["name"],
            "state": self.state,
            "quality": s["quality"],
            "framerate": s["framerate"],
            "destinationID": s["destinationID"],
            "playlistIDs": s["playlistIDs"],
            "preparedPlaylistIDs": s["preparedPlaylistIDs"],
            "streamDuration": s["streamDuration"],
            "scheduleStartAt": format_ts(s["scheduleStartAt"]),
            "scheduleEndAt": format_ts(s["scheduleEndAt"]),
            "startedAt": format_ts(self.started_at),
            "stoppedAt": format_ts(self.stopped_at),
            "agentModeEnabled": s["agentModeEnabled"],
            "runBackupStream": s["runBackupStream"],
            "streamBackend": s["streamBackend"],
            "streamDestination": s["streamDestination"],
        }
