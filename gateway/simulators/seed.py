"""Deterministic sample data: the same seed gives the same ids and fields.

Times are offsets from an anchor (`anchor` in the request, else the simulator's clock floored to the
minute), so scheduled events lie ahead and finished ones behind; pass the same anchor to get answers that
are identical byte for byte.
"""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from ulid import ULID

from .livepush.models import DEFAULT_ZONES, STREAM_CATEGORIES, LivepushStream, Recording
from .loop.models import RECORDING_BASE_URL, Call, Session
from .state import SimState
from .streamloop.models import DEFAULT_SETTINGS, FRAMERATES, QUALITIES, Stream, StreamState
from .streamloop.store import ID_PREFIX
from .validation import InvalidBody
from .wire import parse_ts

SOURCES = ("loop_call", "loop_session", "streamloop_stream", "livepush_stream")
MAX_PER_SOURCE = 1000
# Streamloop ids embed a time; seeded ones take it from here so that they depend on the seed alone.
_ULID_EPOCH_MS = int(datetime(2025, 1, 1, tzinfo=UTC).timestamp() * 1000)
_ID_ALPHABET = string.ascii_lowercase + string.digits

TOPICS = (
    "Morning mobility",
    "Founder office hours",
    "Product launch",
    "Nutrition Q&A",
    "Sleep science",
    "Weekly all-hands",
    "Coaching clinic",
    "Community AMA",
    "Recovery lab",
    "Strength basics",
)
FORMATS = ("live", "workshop", "deep dive", "session", "stream")
HOSTS = ("usr_ada", "usr_grace", "usr_alan", "usr_katherine", "usr_linus")
BRANDS = ("brand_loop", "brand_ember", "brand_tide")

# The order each source's seeded events cycle through, so that even a handful shows every kind.
CALL_MIX = ("scheduled", "live", "ended", "errored", "unscheduled", "ended")
SESSION_MIX = ("scheduled", "live", "ended", "cancelled", "office_hours")
STREAM_MIX: tuple[StreamState, ...] = ("active", "scheduled", "stopped", "failed", "draft", "invalid")


@dataclass(frozen=True)
class SeedRequest:
    seed: int
    counts: dict[str, int]
    anchor: datetime

    @classmethod
    def from_body(cls, body: dict[str, Any], now: datetime) -> SeedRequest:
        seed = body.get("seed", 0)
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise InvalidBody("seed", "must be an integer")
        if "counts" in body:
            counts = body["counts"]
            if not isinstance(counts, dict) or not set(counts) <= set(SOURCES):
                raise InvalidBody("counts", f"must be an object with keys among {', '.join(SOURCES)}")
            per_source = {source: _count(f"counts.{source}", counts.get(source, 0)) for source in SOURCES}
        else:
            count = _count("count", body.get("count", 10))
            per_source = dict.fromkeys(SOURCES, count)
        anchor = now.replace(second=0, microsecond=0)
        if "anchor" in body:
            parsed = parse_ts(body["anchor"]) if isinstance(body["anchor"], str) else None
            if parsed is None:
                raise InvalidBody("anchor", "must be an RFC 3339 date-time")
            anchor = parsed
        return cls(seed=seed, counts=per_source, anchor=anchor)


def _count(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_PER_SOURCE:
        raise InvalidBody(name, f"must be an integer from 0 to {MAX_PER_SOURCE}")
    return value


def seed_everything(state: SimState, wanted: SeedRequest) -> dict[str, list[str]]:
    seeders: dict[str, Callable[[SimState, random.Random, datetime, int], str]] = {
        "loop_call": _seed_call,
        "loop_session": _seed_session,
        "streamloop_stream": _seed_stream,
        "livepush_stream": _seed_livepush_stream,
    }
    created: dict[str, list[str]] = {}
    for source in SOURCES:
        # One generator per source, so asking for more of one source never changes another's data.
        rng = random.Random(f"{wanted.seed}:{source}")
        created[source] = [seeders[source](state, rng, wanted.anchor, index) for index in range(wanted.counts[source])]
    return created


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _title(rng: random.Random, index: int) -> str:
    return f"{rng.choice(TOPICS)} {rng.choice(FORMATS)} #{index + 1}"


def _minutes(rng: random.Random, low: int, high: int) -> timedelta:
    return timedelta(minutes=rng.randint(low, high))


def _seed_call(state: SimState, rng: random.Random, anchor: datetime, index: int) -> str:
    kind = CALL_MIX[index % len(CALL_MIX)]
    call_id = _uuid(rng)
    created_at = anchor - _minutes(rng, 60, 7 * 24 * 60)
    call = Call(
        id=call_id,
        host_user_id=rng.choice(HOSTS),
        title=_title(rng, index),
        scheduled_at=None,
        metadata={"seed_index": index},
        stream_call_id=uuid.UUID(int=rng.getrandbits(128), version=4).hex,
        created_at=created_at,
        updated_at=created_at,
    )
    if kind == "scheduled":
        call.scheduled_at = anchor + _minutes(rng, 30, 3 * 24 * 60)
    elif kind == "live":
        call.scheduled_at = anchor - _minutes(rng, 5, 50)
        call.started_at = call.scheduled_at + _minutes(rng, 0, 4)
        call.status = "live"
        call.is_live = True
        call.current_session_id = _uuid(rng)
        call.updated_at = call.started_at
    elif kind in ("ended", "errored"):
        call.scheduled_at = created_at + _minutes(rng, 10, 24 * 60)
        call.started_at = call.scheduled_at + _minutes(rng, 0, 5)
        call.ended_at = call.started_at + _minutes(rng, 15, 90)
        call.session_ended_at = call.ended_at
        call.status = "ended" if kind == "ended" else "errored"
        call.updated_at = call.ended_at
        if kind == "ended":
            call.recording_url = f"{RECORDING_BASE_URL}/calls/{call_id}.mp4"
            call.recording_ready_at = call.ended_at + timedelta(minutes=2)
            call.updated_at = call.recording_ready_at
    state.loop.calls[call_id] = call
    return call_id


def _seed_session(state: SimState, rng: random.Random, anchor: datetime, index: int) -> str:
    kind = SESSION_MIX[index % len(SESSION_MIX)]
    session_id = _uuid(rng)
    created_at = anchor - _minutes(rng, 60, 14 * 24 * 60)
    session = Session(
        id=session_id,
        host_id=rng.choice(HOSTS),
        brand_id=rng.choice(BRANDS),
        title=_title(rng, index),
        scheduled_at=anchor + _minutes(rng, 60, 7 * 24 * 60),
        max_participants=rng.choice((10, 25, 50, 100)),
        kind="office_hours" if kind == "office_hours" else "live",
        metadata={"seed_index": index},
        created_at=created_at,
        updated_at=created_at,
        category=rng.choice((None, "fitness", "nutrition", "sleep")),
    )
    session.registrants = [f"guest{n}@example.com" for n in range(rng.randint(0, session.max_participants // 2))]
    if kind == "live":
        session.scheduled_at = anchor - _minutes(rng, 5, 30)
        session.status = "live"
        session.started_at = session.scheduled_at + _minutes(rng, 0, 3)
        session.stream_call_id = uuid.UUID(int=rng.getrandbits(128), version=4).hex
        session.updated_at = session.started_at
    elif kind == "ended":
        session.scheduled_at = anchor - _minutes(rng, 2 * 24 * 60, 10 * 24 * 60)
        session.status = "ended"
        session.started_at = session.scheduled_at
        session.duration_minutes = rng.choice((30, 45, 60))
        session.ended_at = session.started_at + timedelta(minutes=session.duration_minutes)
        session.recording_url = f"{RECORDING_BASE_URL}/sessions/{session_id}.mp4"
        session.updated_at = session.ended_at
    elif kind == "cancelled":
        session.status = "cancelled"
        session.updated_at = anchor - _minutes(rng, 1, 59)
    state.loop.sessions[session_id] = session
    return session_id


def _seed_stream(state: SimState, rng: random.Random, anchor: datetime, index: int) -> str:
    wanted: StreamState = STREAM_MIX[index % len(STREAM_MIX)]
    ulid = ULID.from_bytes((_ULID_EPOCH_MS + index * 1000).to_bytes(6, "big") + rng.randbytes(10))
    created_at = anchor - _minutes(rng, 60, 30 * 24 * 60)
    settings = DEFAULT_SETTINGS | {
        "name": _title(rng, index),
        "quality": rng.choice(QUALITIES),
        "framerate": rng.choice(FRAMERATES),
        "destinationID": None if wanted == "invalid" else f"dest_{rng.getrandbits(48):012x}",
        "playlistIDs": [f"playlist_{rng.getrandbits(32):08x}" for _ in range(rng.randint(1, 3))],
        "streamDestination": "youtube",
        "streamDuration": rng.choice((0, 3600, 86400)),
    }
    stream = Stream(
        id=ID_PREFIX + str(ulid),
        created_at=created_at,
        updated_at=created_at,
        state=wanted,
        state_since=created_at,
        settings=settings,
    )
    if wanted == "scheduled":
        settings["scheduleStartAt"] = anchor + _minutes(rng, 60, 5 * 24 * 60)
        settings["scheduleEndAt"] = settings["scheduleStartAt"] + timedelta(hours=rng.choice((1, 4, 24)))
    elif wanted in ("active", "stopped", "failed"):
        stream.started_at = anchor - _minutes(rng, 30, 3 * 24 * 60)
        stream.state_since = stream.started_at
        if wanted == "stopped":
            stream.stopped_at = stream.started_at + _minutes(rng, 30, 600)
            stream.state_since = stream.stopped_at
        elif wanted == "failed":
            stream.state_since = stream.started_at + _minutes(rng, 1, 120)
    stream.updated_at = max(stream.created_at, stream.state_since)
    state.streamloop.streams[stream.id] = stream
    return stream.id


def _livepush_id(rng: random.Random, prefix: str, length: int) -> str:
    return prefix + "".join(rng.choice(_ID_ALPHABET) for _ in range(length))


def _seed_livepush_stream(state: SimState, rng: random.Random, anchor: datetime, index: int) -> str:
    store = state.livepush
    category = STREAM_CATEGORIES[index % len(STREAM_CATEGORIES)]
    stream = LivepushStream(
        id=_livepush_id(rng, "st_", 13),
        chat_id=_livepush_id(rng, "mc_", 12),
        embed_id=_livepush_id(rng, "em_", 12),
        name=_title(rng, index),
        category=category,
        zone_id=DEFAULT_ZONES[category].id,
        created_at=anchor - _minutes(rng, 60, 60 * 24 * 60),
        # Every fifth stream is switched off, as an account's old streams tend to be.
        is_disabled=index % 5 == 4,
        destinations=[d for d in store.destinations if rng.random() < 0.6],
    )
    store.streams[stream.id] = stream
    # Seeding the same seed again replaces, rather than repeats, what it made before.
    store.recordings = [r for r in store.recordings if r.stream_id != stream.id]
    for _ in range(rng.randint(0, 2)):
        made_at = stream.created_at + _minutes(rng, 10, 24 * 60)
        store.recordings.append(
            Recording(
                id=_livepush_id(rng, "rc_", 12),
                stream_id=stream.id,
                stream_key=_livepush_id(rng, "", 20),
                time=made_at,
                updated_at=made_at,
            )
        )
    return stream.id
