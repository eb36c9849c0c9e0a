"""The write side of the adapters: request bodies checked before sending, creates, finding an interrupted
create again, updates and registrations, against the simulators."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import aiohttp
import orjson
import pytest

from gateway.errors import (
    BadUserInput,
    IdempotencyKeyReused,
    UnsupportedByVendor,
    VendorConflict,
    VendorPreconditionFailed,
)
from gateway.model import Source, Status
from gateway.vendors import livepush, loop, streamloop
from gateway.vendors.base import OPERATION_METADATA_KEY, CreateSpec, EventChanges, SourceAdapter
from gateway.vendors.registry import build_adapters, build_clients
from tests.conftest import Sim


async def nothing_taken(native_ids: Sequence[str]) -> set[str]:
    """No other operation claimed any of them."""
    return set()


START = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
END = START + timedelta(hours=2)
OP = "op_01JTEST"


@pytest.fixture
def adapters(http_session: aiohttp.ClientSession, settings_for: Any) -> dict[Source, SourceAdapter]:
    return build_adapters(build_clients(http_session, settings_for()))


@pytest.fixture
def calls(adapters: dict[Source, SourceAdapter]) -> loop.LoopCallAdapter:
    adapter = adapters[Source.LOOP_CALL]
    assert isinstance(adapter, loop.LoopCallAdapter)
    return adapter


@pytest.fixture
def sessions(adapters: dict[Source, SourceAdapter]) -> loop.LoopSessionAdapter:
    adapter = adapters[Source.LOOP_SESSION]
    assert isinstance(adapter, loop.LoopSessionAdapter)
    return adapter


@pytest.fixture
def streams(adapters: dict[Source, SourceAdapter]) -> streamloop.StreamloopStreamAdapter:
    adapter = adapters[Source.STREAMLOOP_STREAM]
    assert isinstance(adapter, streamloop.StreamloopStreamAdapter)
    return adapter


@pytest.fixture
def pushes(adapters: dict[Source, SourceAdapter]) -> livepush.LivepushStreamAdapter:
    adapter = adapters[Source.LIVEPUSH_STREAM]
    assert isinstance(adapter, livepush.LivepushStreamAdapter)
    return adapter


def session_spec(title: str = "Office hours", **options: Any) -> CreateSpec:
    return CreateSpec(
        title=title,
        scheduled_start=START,
        host_id="host_1",
        options={"brand_id": "brand_1", "max_participants": 50, **options},
    )


async def new_session(sessions: loop.LoopSessionAdapter, operation_id: str = OP, **options: Any) -> Any:
    return await sessions.create(sessions.prepare_create(session_spec(**options), operation_id), idempotency_key="k")


async def sim_now(sim: Sim) -> datetime:
    clock = await sim.control("GET", "clock")
    return datetime.fromisoformat(clock["now"])


# prepare_create: every contract rule, named by its GraphQL input path, before anything is sent

CALL, SESSION, STREAM, PUSH = "targets.loopCall", "targets.loopSession", "targets.streamloop", "targets.livepush"


def call_spec(title: str = "Call", **fields: Any) -> CreateSpec:
    return CreateSpec(title, **fields)


def bare_session_spec(
    scheduled_start: datetime | None = START, host_id: str | None = "host_1", **options: Any
) -> CreateSpec:
    return CreateSpec("Session", scheduled_start, host_id=host_id, options=options)


def stream_spec(scheduled_end: datetime | None = None, **options: Any) -> CreateSpec:
    return CreateSpec("Stream", START if scheduled_end else None, scheduled_end, options=options)


def push_spec(title: str = "Show", **options: Any) -> CreateSpec:
    return CreateSpec(title, options=options)


INVALID_CREATES = [
    (Source.LOOP_CALL, call_spec(), f"{CALL}.hostUserId", "REQUIRED"),
    (Source.LOOP_CALL, call_spec(options={"host_user_id": ""}), f"{CALL}.hostUserId", "EMPTY"),
    # the empty host came from the event's own hostId, so that is the input to blame
    (Source.LOOP_CALL, call_spec(host_id=""), "hostId", "EMPTY"),
    (Source.LOOP_CALL, call_spec("", host_id="h"), "title", "EMPTY"),
    (Source.LOOP_CALL, call_spec(host_id="h", metadata=[1]), "metadata", "WRONG_TYPE"),
    (Source.LOOP_CALL, call_spec(host_id="h", metadata={"at": object()}), "metadata", "WRONG_TYPE"),
    (Source.LOOP_CALL, call_spec(host_id="h", options={"brand_id": "b"}), f"{CALL}.brandId", "UNKNOWN_FIELD"),
    (
        Source.LOOP_SESSION,
        bare_session_spec(host_id=None, brand_id="b", max_participants=5),
        f"{SESSION}.hostId",
        "REQUIRED",
    ),
    (Source.LOOP_SESSION, session_spec(host_id=""), f"{SESSION}.hostId", "EMPTY"),
    (Source.LOOP_SESSION, bare_session_spec(max_participants=5), f"{SESSION}.brandId", "REQUIRED"),
    (Source.LOOP_SESSION, session_spec(brand_id=""), f"{SESSION}.brandId", "EMPTY"),
    (Source.LOOP_SESSION, session_spec(title=""), "title", "EMPTY"),
    (Source.LOOP_SESSION, bare_session_spec(None, brand_id="b", max_participants=5), "scheduledStart", "REQUIRED"),
    (Source.LOOP_SESSION, bare_session_spec(brand_id="b"), f"{SESSION}.maxParticipants", "REQUIRED"),
    (Source.LOOP_SESSION, session_spec(max_participants=0), f"{SESSION}.maxParticipants", "OUT_OF_RANGE"),
    (Source.LOOP_SESSION, session_spec(max_participants=-1), f"{SESSION}.maxParticipants", "OUT_OF_RANGE"),
    (Source.LOOP_SESSION, session_spec(max_participants=True), f"{SESSION}.maxParticipants", "WRONG_TYPE"),
    (Source.LOOP_SESSION, session_spec(max_participants="5"), f"{SESSION}.maxParticipants", "WRONG_TYPE"),
    (Source.LOOP_SESSION, session_spec(kind="webinar"), f"{SESSION}.kind", "NOT_ALLOWED"),
    (Source.STREAMLOOP_STREAM, stream_spec(stream_duration=-1), f"{STREAM}.streamDuration", "OUT_OF_RANGE"),
    (Source.STREAMLOOP_STREAM, stream_spec(quality="q_480p"), f"{STREAM}.quality", "NOT_ALLOWED"),
    (Source.STREAMLOOP_STREAM, stream_spec(framerate="f_120"), f"{STREAM}.framerate", "NOT_ALLOWED"),
    (Source.STREAMLOOP_STREAM, stream_spec(playlist_ids="pl_1"), f"{STREAM}.playlistIds", "WRONG_TYPE"),
    (Source.STREAMLOOP_STREAM, stream_spec(run_backup_stream="yes"), f"{STREAM}.runBackupStream", "WRONG_TYPE"),
    (Source.STREAMLOOP_STREAM, stream_spec(youtube_settings_id="y"), f"{STREAM}.youtubeSettingsId", "UNKNOWN_FIELD"),
    (Source.STREAMLOOP_STREAM, stream_spec(START - timedelta(minutes=1)), "scheduledEnd", "END_BEFORE_START"),
    (Source.STREAMLOOP_STREAM, stream_spec(START), "scheduledEnd", "END_BEFORE_START"),
    (Source.LIVEPUSH_STREAM, push_spec(), f"{PUSH}.category", "REQUIRED"),
    (Source.LIVEPUSH_STREAM, push_spec(category="vod"), f"{PUSH}.category", "NOT_ALLOWED"),
    (Source.LIVEPUSH_STREAM, push_spec("", category="simulcast"), "title", "EMPTY"),
]


@pytest.mark.parametrize(("source", "spec", "field", "reason"), INVALID_CREATES)
async def test_prepare_create_refuses_what_the_contract_forbids(
    sim: Sim, adapters: dict[Source, SourceAdapter], source: Source, spec: CreateSpec, field: str, reason: str
) -> None:
    with pytest.raises(BadUserInput) as caught:
        adapters[source].prepare_create(spec, OP)
    assert (caught.value.field, caught.value.reason) == (field, reason)
    assert caught.value.message.startswith(f"{field}: ")
    assert await sim.vendor_requests() == 0


def test_a_violation_names_the_field_the_rule_and_the_vendor(sessions: loop.LoopSessionAdapter) -> None:
    with pytest.raises(BadUserInput) as caught:
        sessions.prepare_create(session_spec(max_participants=0), OP)
    assert caught.value.message == "targets.loopSession.maxParticipants: must be greater than 0 (Loop Live)"
    assert caught.value.extensions() == {
        "code": "BAD_USER_INPUT",
        "retryable": False,
        "field": "targets.loopSession.maxParticipants",
        "reason": "OUT_OF_RANGE",
    }


def test_prepared_bodies_are_plain_json(adapters: dict[Source, SourceAdapter]) -> None:
    berlin = timezone(timedelta(hours=2))
    spec = CreateSpec(
        "Launch",
        START.astimezone(berlin),
        END.astimezone(berlin),
        host_id="host_1",
        options={"brand_id": "brand_1", "max_participants": 5, "category": "schedule"},
    )
    for source, options in (
        (Source.LOOP_CALL, {}),
        (Source.LOOP_SESSION, {"brand_id": "brand_1", "max_participants": 5}),
        (Source.STREAMLOOP_STREAM, {}),
        (Source.LIVEPUSH_STREAM, {"category": "schedule"}),
    ):
        spec.options = options
        body = adapters[source].prepare_create(spec, OP)
        assert orjson.loads(orjson.dumps(body)) == body


# create


async def test_loop_call_create(sim: Sim, calls: loop.LoopCallAdapter) -> None:
    spec = CreateSpec("Town hall", START, host_id="host_1", metadata={"team": "growth", OPERATION_METADATA_KEY: "x"})
    body = calls.prepare_create(spec, OP)
    assert body == {
        "host_user_id": "host_1",
        "title": "Town hall",
        "scheduled_at": "2030-06-01T12:00:00Z",
        # the operation id wins over a caller's value under the same key
        "metadata": {"team": "growth", OPERATION_METADATA_KEY: OP},
    }
    orjson.dumps(body)

    event = await calls.create(body, idempotency_key="ignored")
    assert event.source is Source.LOOP_CALL
    assert (event.title, event.host_id, event.scheduled_start) == ("Town hall", "host_1", START)
    assert event.status is Status.SCHEDULED
    assert (await calls.fetch(event.native_id)).title == "Town hall"


async def test_loop_call_host_option_wins_over_the_event_host(calls: loop.LoopCallAdapter) -> None:
    body = calls.prepare_create(CreateSpec("Call", host_id="host_1", options={"host_user_id": "host_2"}), OP)
    assert (body["host_user_id"], body["scheduled_at"]) == ("host_2", None)
    assert (await calls.create(body, idempotency_key="k")).host_id == "host_2"


async def test_loop_session_create(sessions: loop.LoopSessionAdapter) -> None:
    spec = session_spec(kind="office_hours", host_id="host_9")
    spec.metadata = {"cohort": 3}
    body = sessions.prepare_create(spec, OP)
    assert body == {
        "host_id": "host_9",
        "brand_id": "brand_1",
        "title": "Office hours",
        "scheduled_at": "2030-06-01T12:00:00Z",
        "max_participants": 50,
        "kind": "office_hours",
        "metadata": {"cohort": 3, OPERATION_METADATA_KEY: OP},
    }
    orjson.dumps(body)

    event = await sessions.create(body, idempotency_key="k")
    assert event.source is Source.LOOP_SESSION
    assert (event.title, event.host_id, event.scheduled_start, event.status) == (
        "Office hours",
        "host_9",
        START,
        Status.SCHEDULED,
    )
    assert event.metadata == {"cohort": 3, OPERATION_METADATA_KEY: OP}
    assert (event.extra["brand_id"], event.extra["kind"], event.extra["max_participants"]) == (
        "brand_1",
        "office_hours",
        50,
    )


async def test_loop_session_kind_defaults_to_live(sessions: loop.LoopSessionAdapter) -> None:
    assert sessions.prepare_create(session_spec(), OP)["kind"] == "live"


async def test_streamloop_create(streams: streamloop.StreamloopStreamAdapter) -> None:
    spec = CreateSpec(
        "Lo-fi 24/7",
        START,
        END,
        host_id="not a Streamloop field",
        metadata={"not": "kept"},
        options={
            "quality": "q_1080p",
            "framerate": "f_30",
            "playlist_ids": ["pl_1", "pl_2"],
            "destination_id": "dest_1",
            "stream_duration": 0,
            "run_backup_stream": False,
            "agent_mode_enabled": None,
        },
    )
    body = streams.prepare_create(spec, OP)
    assert body == {
        "name": "Lo-fi 24/7",
        "scheduleStartAt": "2030-06-01T12:00:00Z",
        "scheduleEndAt": "2030-06-01T14:00:00Z",
        "quality": "q_1080p",
        "framerate": "f_30",
        "playlistIDs": ["pl_1", "pl_2"],
        "destinationID": "dest_1",
        "streamDuration": 0,
        "runBackupStream": False,
    }
    orjson.dumps(body)

    event = await streams.create(body, idempotency_key=f"{OP}.STREAMLOOP_STREAM")
    assert event.source is Source.STREAMLOOP_STREAM
    assert (event.title, event.scheduled_start, event.scheduled_end) == ("Lo-fi 24/7", START, END)
    assert (event.status, event.vendor_status) == (Status.SCHEDULED, "scheduled")
    assert event.extra["quality"] == "q_1080p"
    assert event.extra["playlist_ids"] == ["pl_1", "pl_2"]
    assert event.extra["destination_id"] == "dest_1"


async def test_streamloop_create_leaves_out_what_is_not_given(streams: streamloop.StreamloopStreamAdapter) -> None:
    body = streams.prepare_create(CreateSpec("Bare"), OP)
    assert body == {"name": "Bare"}
    event = await streams.create(body, idempotency_key="k")
    assert (event.status, event.scheduled_start) == (Status.DRAFT, None)


async def test_streamloop_create_again_with_the_same_key_is_one_stream(
    streams: streamloop.StreamloopStreamAdapter,
) -> None:
    body = streams.prepare_create(CreateSpec("Once", options={"destination_id": "dest_1"}), OP)
    first = await streams.create(body, idempotency_key="op.1")
    again = await streams.create(dict(body), idempotency_key="op.1")
    assert again == first  # the stored answer, replayed
    listing = await streams.list_page(None)
    assert [e.native_id for e in listing.events] == [first.native_id]


async def test_streamloop_same_key_other_body_is_refused(streams: streamloop.StreamloopStreamAdapter) -> None:
    await streams.create(streams.prepare_create(CreateSpec("First"), OP), idempotency_key="op.1")
    with pytest.raises(IdempotencyKeyReused):
        await streams.create(streams.prepare_create(CreateSpec("Second"), OP), idempotency_key="op.1")


async def test_livepush_create(pushes: livepush.LivepushStreamAdapter) -> None:
    spec = CreateSpec("Launch day", START, END, host_id="h", metadata={"x": 1}, options={"category": "schedule"})
    body = pushes.prepare_create(spec, OP)
    assert body == {"category": "schedule", "name": "Launch day"}
    orjson.dumps(body)

    event = await pushes.create(body, idempotency_key="k")
    assert event.source is Source.LIVEPUSH_STREAM
    assert (event.title, event.status) == ("Launch day", Status.DRAFT)
    assert event.extra["category"] == "schedule"
    assert event.extra["zone"] == "zn_sched0001"
    assert event.native_id.startswith("st_")


# find_created


async def test_loop_session_found_by_its_operation(sim: Sim, sessions: loop.LoopSessionAdapter) -> None:
    for n in range(3):
        await new_session(sessions, f"op_other_{n}")
    await new_session(sessions, f"op_brand_{OP}", brand_id="brand_2")
    mine = await new_session(sessions, OP)
    await new_session(sessions, "op_after")
    body = sessions.prepare_create(session_spec(), OP)
    since = await sim_now(sim)

    sessions.find_page_size = 2  # so that the search walks pages
    found = await sessions.find_created(body, operation_id=OP, since=since, taken=nothing_taken)
    assert found is not None
    assert found.native_id == mine.native_id
    assert await sessions.find_created(body, operation_id="op_never_sent", since=since, taken=nothing_taken) is None


async def test_loop_session_found_twice_is_a_conflict(sim: Sim, sessions: loop.LoopSessionAdapter) -> None:
    await new_session(sessions, OP)
    await new_session(sessions, OP)
    body = sessions.prepare_create(session_spec(), OP)
    with pytest.raises(VendorConflict, match="2 Loop Live sessions"):
        await sessions.find_created(body, operation_id=OP, since=await sim_now(sim), taken=nothing_taken)


async def test_livepush_found_by_name_category_and_time(sim: Sim, pushes: livepush.LivepushStreamAdapter) -> None:
    body = pushes.prepare_create(CreateSpec("Launch", options={"category": "simulcast"}), OP)
    await pushes.create(body, idempotency_key="k")  # an older stream of the same name
    await sim.control("POST", "clock", {"advance_seconds": 60})
    since = await sim_now(sim)
    await pushes.create(
        pushes.prepare_create(CreateSpec("Launch", options={"category": "schedule"}), OP), idempotency_key="k"
    )
    await pushes.create(
        pushes.prepare_create(CreateSpec("Other", options={"category": "simulcast"}), OP), idempotency_key="k"
    )
    made = await pushes.create(body, idempotency_key="k")

    found = await pushes.find_created(body, operation_id=OP, since=since, taken=nothing_taken)
    assert found is not None
    assert found.native_id == made.native_id
    assert found.extra["chat_id"] == made.extra["chat_id"]


async def test_livepush_not_found(sim: Sim, pushes: livepush.LivepushStreamAdapter) -> None:
    await pushes.create(
        pushes.prepare_create(CreateSpec("Other", options={"category": "simulcast"}), OP), idempotency_key="k"
    )
    body = pushes.prepare_create(CreateSpec("Launch", options={"category": "simulcast"}), OP)
    assert await pushes.find_created(body, operation_id=OP, since=await sim_now(sim), taken=nothing_taken) is None


async def test_livepush_leaves_out_what_other_operations_claimed(
    sim: Sim, pushes: livepush.LivepushStreamAdapter
) -> None:
    since = await sim_now(sim)
    body = pushes.prepare_create(CreateSpec("Launch", options={"category": "simulcast"}), OP)
    theirs = await pushes.create(body, idempotency_key="k")
    mine = await pushes.create(body, idempotency_key="k")

    async def claimed_by_others(native_ids: Sequence[str]) -> set[str]:
        return {theirs.native_id} & set(native_ids)

    found = await pushes.find_created(body, operation_id=OP, since=since, taken=claimed_by_others)
    assert found is not None and found.native_id == mine.native_id

    async def all_claimed(native_ids: Sequence[str]) -> set[str]:
        return set(native_ids)

    assert await pushes.find_created(body, operation_id=OP, since=since, taken=all_claimed) is None


async def test_livepush_two_matches_are_a_conflict(sim: Sim, pushes: livepush.LivepushStreamAdapter) -> None:
    since = await sim_now(sim)
    body = pushes.prepare_create(CreateSpec("Launch", options={"category": "simulcast"}), OP)
    await pushes.create(body, idempotency_key="k")
    await pushes.create(body, idempotency_key="k")
    with pytest.raises(VendorConflict, match="ambiguous: 2 Livepush streams named 'Launch'"):
        await pushes.find_created(body, operation_id=OP, since=since, taken=nothing_taken)


async def test_find_created_is_unsupported_without_a_way_to_look(
    sim: Sim, calls: loop.LoopCallAdapter, streams: streamloop.StreamloopStreamAdapter
) -> None:
    assert streams.idempotent_create and not calls.idempotent_create
    call_body = calls.prepare_create(CreateSpec("Call", host_id="h"), OP)
    stream_body = streams.prepare_create(CreateSpec("Stream"), OP)
    with pytest.raises(UnsupportedByVendor):
        await calls.find_created(call_body, operation_id=OP, since=START, taken=nothing_taken)
    with pytest.raises(UnsupportedByVendor):
        await streams.find_created(stream_body, operation_id=OP, since=START, taken=nothing_taken)
    assert await sim.vendor_requests() == 0


# update


async def test_loop_session_update(sessions: loop.LoopSessionAdapter) -> None:
    created = await new_session(sessions)
    moved = START + timedelta(days=1)
    updated = await sessions.update(created.native_id, EventChanges(title="Renamed", scheduled_start=moved))
    assert (updated.title, updated.scheduled_start) == ("Renamed", moved)
    assert (await sessions.fetch(created.native_id)).title == "Renamed"


async def test_loop_session_has_no_scheduled_end(sim: Sim, sessions: loop.LoopSessionAdapter) -> None:
    created = await new_session(sessions)
    await sim.control("POST", "stats/reset")
    for changes in (EventChanges(scheduled_end=END), EventChanges(title="Renamed", scheduled_end=END)):
        with pytest.raises(UnsupportedByVendor, match="scheduledEnd"):
            await sessions.update(created.native_id, changes)
    with pytest.raises(BadUserInput) as caught:
        await sessions.update(created.native_id, EventChanges(title=""))
    assert caught.value.field == "title"
    assert await sim.vendor_requests() == 0


async def test_streamloop_update_title_and_schedule(sim: Sim, streams: streamloop.StreamloopStreamAdapter) -> None:
    created = await streams.create(streams.prepare_create(CreateSpec("Draft"), OP), idempotency_key="k")
    assert created.status is Status.DRAFT

    renamed = await streams.update(created.native_id, EventChanges(title="Renamed"))
    assert (renamed.title, renamed.status) == ("Renamed", Status.DRAFT)

    scheduled = await streams.update(created.native_id, EventChanges(scheduled_start=START, scheduled_end=END))
    assert (scheduled.vendor_status, scheduled.scheduled_start, scheduled.scheduled_end) == ("scheduled", START, END)

    later_end = END + timedelta(hours=1)
    extended = await streams.update(created.native_id, EventChanges(title="Both", scheduled_end=later_end))
    assert (extended.title, extended.scheduled_start, extended.scheduled_end) == ("Both", START, later_end)

    await sim.control("POST", f"streamloop/streams/{created.native_id}/state", {"state": "stopped"})
    again = await streams.update(created.native_id, EventChanges(title="Rerun", scheduled_start=START))
    assert (again.title, again.vendor_status) == ("Rerun", "scheduled")
    assert again.scheduled_end == later_end  # the schedule route is sent the planned end it would clear


async def test_streamloop_update_end_before_start(sim: Sim, streams: streamloop.StreamloopStreamAdapter) -> None:
    with pytest.raises(BadUserInput) as caught:
        await streams.update(
            "stream_01J0000000000000000000000Z", EventChanges(scheduled_start=END, scheduled_end=START)
        )
    assert (caught.value.field, caught.value.reason) == ("scheduledEnd", "END_BEFORE_START")
    assert await sim.vendor_requests() == 0


async def test_streamloop_update_while_live_is_a_conflict(
    sim: Sim, streams: streamloop.StreamloopStreamAdapter
) -> None:
    created = await streams.create(streams.prepare_create(CreateSpec("Live"), OP), idempotency_key="k")
    await sim.control("POST", f"streamloop/streams/{created.native_id}/state", {"state": "active"})
    with pytest.raises(VendorConflict) as caught:
        await streams.update(created.native_id, EventChanges(title="Renamed"))
    assert caught.value.vendor_code == "IMMUTABLE_WHILE_LIVE"
    with pytest.raises(VendorConflict) as caught:
        await streams.update(created.native_id, EventChanges(scheduled_start=START))
    assert caught.value.vendor_code == "STREAM_ILLEGAL_TRANSITION"


async def test_update_is_unsupported_for_calls_and_livepush(
    sim: Sim, calls: loop.LoopCallAdapter, pushes: livepush.LivepushStreamAdapter
) -> None:
    for adapter in (calls, pushes):
        with pytest.raises(UnsupportedByVendor):
            await adapter.update("any", EventChanges(title="Renamed"))
    assert await sim.vendor_requests() == 0


# register


async def test_register_counts_refuses_twice_and_fills_up(sessions: loop.LoopSessionAdapter) -> None:
    created = await new_session(sessions, max_participants=2)
    assert created.extra["registered_count"] == 0

    registered = await sessions.register(created.native_id, role="participant", guest_email=None)
    assert registered.extra["registered_count"] == 1
    with pytest.raises(VendorConflict):
        await sessions.register(created.native_id, role="participant", guest_email=None)

    guest = await sessions.register(created.native_id, role="guest", guest_email="ada@example.com")
    assert guest.extra["registered_count"] == 2
    with pytest.raises(VendorPreconditionFailed):
        await sessions.register(created.native_id, role="guest", guest_email="grace@example.com")


async def test_register_refuses_an_unknown_role(sim: Sim, sessions: loop.LoopSessionAdapter) -> None:
    with pytest.raises(BadUserInput) as caught:
        await sessions.register("any", role="moderator", guest_email=None)
    assert (caught.value.field, caught.value.reason) == ("role", "NOT_ALLOWED")
    assert await sim.vendor_requests() == 0
