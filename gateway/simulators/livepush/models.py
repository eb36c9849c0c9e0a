"""Livepush's records: streams, zones, destinations and recordings, and their wire shapes."""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from ..wire import format_ts

StreamCategory = Literal["simulcast", "schedule"]
STREAM_CATEGORIES: tuple[StreamCategory, ...] = ("simulcast", "schedule")
_ID_ALPHABET = string.ascii_lowercase + string.digits


def new_id(prefix: str, length: int) -> str:
    """Livepush ids: a type prefix (`st_`, `mc_`, `em_`, `zn_`, `pb_`, `rc_`) and random characters."""
    return prefix + "".join(secrets.choice(_ID_ALPHABET) for _ in range(length))


@dataclass(frozen=True)
class Zone:
    id: str
    name: str
    category: StreamCategory
    host: str
    is_public: bool = True
    is_default: bool = True

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "category": self.category,
            "host": self.host,
            "isPublic": self.is_public,
            "isDefault": self.is_default,
        }


# The default processing zone for each category, where a new stream is placed.
DEFAULT_ZONES: dict[StreamCategory, Zone] = {
    "simulcast": Zone("zn_global001", "Livepush Global", "simulcast", "stream.livepush.io"),
    "schedule": Zone("zn_sched0001", "Livepush Scheduler", "schedule", "schedule.livepush.io"),
}
ZONES_BY_ID = {zone.id: zone for zone in DEFAULT_ZONES.values()}


@dataclass
class Destination:
    id: str
    app_name: str
    label: str
    rtmp_base: str
    updated_at: datetime
    is_pinned: bool = False
    is_disabled: bool = False

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "appName": self.app_name,
            "label": self.label,
            "rtmpBase": self.rtmp_base,
            "isPinned": self.is_pinned,
            "isDisabled": self.is_disabled,
            "updatedAt": format_ts(self.updated_at),
        }


@dataclass
class Recording:
    id: str
    stream_id: str
    stream_key: str
    time: datetime  # when the recording was made
    updated_at: datetime

    def wire(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "stream": self.stream_id,
            "streamKey": self.stream_key,
            "time": format_ts(self.time),
            "updatedAt": format_ts(self.updated_at),
        }


@dataclass
class LivepushStream:
    id: str
    chat_id: str
    embed_id: str
    name: str
    category: StreamCategory
    zone_id: str
    created_at: datetime
    is_disabled: bool = False
    unsafe_content: bool = False
    has_validated: bool = True
    config: dict[str, Any] = field(default_factory=lambda: {"pullUrlMaxRetry": 5, "recordingTier": "rise"})
    destinations: list[Destination] = field(default_factory=list)
    playlist: list[str] = field(default_factory=list)

    @property
    def zone(self) -> Zone:
        return ZONES_BY_ID[self.zone_id]

    def _metadata(self) -> dict[str, Any]:
        return {"name": self.name, "category": self.category}

    def list_item(self) -> dict[str, Any]:
        """What `GET /streams/mine` shows of a stream."""
        return {
            "id": self.id,
            "metadata": self._metadata(),
            "createdAt": format_ts(self.created_at),
            "isDisabled": self.is_disabled,
            "config": self.config,
            "destinations": [d.wire() for d in self.destinations],
            "zone": self.zone.wire(),
        }

    def created(self) -> dict[str, Any]:
        """The create answer: the zone appears as its id."""
        return self._detail() | {"zone": self.zone_id}

    def detail(self) -> dict[str, Any]:
        return self._detail() | {"zone": self.zone.wire()}

    def _detail(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "chatId": self.chat_id,
            "embedId": self.embed_id,
            "createdAt": format_ts(self.created_at),
            "metadata": self._metadata(),
            "config": self.config,
            "destinations": [d.wire() for d in self.destinations],
            "zone": None,
            "unsafeContent": self.unsafe_content,
            "hasValidated": self.has_validated,
        }
