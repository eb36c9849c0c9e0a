"""normalize() per source, on wire objects built from the vendors' reference pages (no network)."""

from __future__ import annotations

import typing
from datetime import UTC, datetime
from typing import Any

import pydantic
import pytest

from gateway.model import Event, Recording, Source, Status
from gateway.vendors import livepush, loop, streamloop

T0 = datetime(2023, 11, 7, 5, 31, 56, tzinfo=UTC)
CALL_ID = "7f0c3b1e-2a55-4d7e-9a3c-1d2e3f4a5b6c"
SESSION_ID = "0b8f2c7d-4e1a-4c9b-8d3e-5f6a7b8c9d0e"


def call_row(**overrides: Any) -> dict[str, Any]:
    """A call as `POST /v1/live/calls` answers it: every required key present, nullable ones null."""
    row: dict[str, Any] = {
        "id": CALL_ID,
        "host_user_id": "user_1",
        "title": "Morning check-in",
        "scheduled_at": "2023-11-07T05:31:56Z",
        "started_at": None,
        "ended_at": None,
        "stream_call_id": "sc_123",
        "stream_call_type": "livestream",
        "recording_url": None,
        "recording_ready_at": None,
        "status": "scheduled",
        "created_at": "2023-11-07T05:00:00Z",
        "updated_at": "2023-11-07T05:00:00Z",
    }
    return row | overrides


def call_detail(**overrides: Any) -> dict[str, Any]:
    """`GET /v1/live/calls/{id}`: the row plus `live`."""
    return call_row(live=None) | overrides


def session_row(**overrides: Any) -> dict[str, Any]:
    row: dict[str, Any] = {
        "id": SESSION_ID,
        "host_id": "host_1",
        "brand_id": "brand_1",
        "title": "Office hours",
        "kind": "office_hours",
        "category": None,
        "scheduled_at": "2023-11-07T05:31:56Z",
        "started_at": None,
        "ended_at": None,
        "status": "scheduled",
        "stream_call_id": None,
        "max_participants": 25,
        "duration_minutes": 45,
        "recording_url": None,
        "metadata": {"topic": "sleep"},
        "created_at": "2023-11-07T05:00:00Z",
        "updated_at": "2023-11-07T05:10:00Z",
        "registered_count": 3,
        "is_registered": False,
    }
    return row | overrides


def stream_full(**overrides: Any) -> dict[str, Any]:
    """A Streamloop stream with the documented and the inferred fields."""
    row: dict[str, Any] = {
        "id": "stream_01JABCDEF0123456789ABCDEFG",
        "createdAt": "2023-11-07T05:31:56Z",
        "updatedAt": "2023-11-07T06:00:00Z",
        "name": "Lo-fi 24/7",
        "state": "active",
        "quality": "q_1080p",
        "framerate": "f_30",
        "destinationID": "dest_1",
        "playlistIDs": ["pl_1", "pl_2"],
        "preparedPlaylistIDs": [],
        "streamDuration": 0,
        "scheduleStartAt": "2023-11-08T00:00:00Z",
        "scheduleEndAt": "2023-11-09T00:00:00Z",
        "startedAt": "2023-11-07T05:40:00Z",
        "stoppedAt": None,
        "agentModeEnabled": True,
        "runBackupStream": False,
        "streamBackend": "manifest",
        "streamDestination": "youtube",
    }
    return row | overrides


# The three Livepush examples, as the reference page prints them (destinations filled in).
LIVEPUSH_CREATED: dict[str, Any] = {
    "id": "st_xxxxxxxxxxxxx",
    "chatId": "mc_xxxxxxxxxxxx",
    "embedId": "em_xxxxxxxxxxxx",
    "createdAt": "2019-08-24T14:15:22Z",
    "metadata": {"name": "Luke Skywalker Apricot Fascinating", "category": "simulcast"},
    "config": {"pullUrlMaxRetry": 5, "recordingTier": "rise"},
    "destinations": [{}],
    "zone": "zn_xxxxxxxxx",
    "unsafeContent": True,
    "hasValidated": True,
}
LIVEPUSH_ZONE = {
    "id": "zn_xxxxxxxxx",
    "name": "Livepush Global",
    "category": "simulcast",
    "host": "stream.livepush.io",
    "isPublic": True,
    "isDefault": True,
}
LIVEPUSH_BY_ID: dict[str, Any] = LIVEPUSH_CREATED | {
    "metadata": {"name": "OUTPUT 1", "category": "simulcast"},
    "destinations": [{"id": "pb_1", "appName": "youtube", "label": "Main", "rtmpBase": "rtmp://a/live"}],
    "zone": LIVEPUSH_ZONE,
}
LIVEPUSH_LISTED: dict[str, Any] = {
    "id": "st_xxxxxxxxxxxxx",
    "metadata": {"name": "OUTPUT 1", "category": "schedule"},
    "createdAt": "2019-08-24T14:15:22Z",
    "isDisabled": False,
    "config": {},
    "destinations": [],
    "zone": LIVEPUSH_ZONE,
}

# The README's table "One lifecycle for all of them", column by column.
LIFECYCLE: list[tuple[dict[str, Status], str, Status]] = [
    (loop.CALL_STATUS, "scheduled", Status.SCHEDULED),
    (loop.CALL_STATUS, "live", Status.LIVE),
    (loop.CALL_STATUS, "ended", Status.ENDED),
    (loop.CALL_STATUS, "errored", Status.FAILED),
    (loop.SESSION_STATUS, "scheduled", Status.SCHEDULED),
    (loop.SESSION_STATUS, "live", Status.LIVE),
    (loop.SESSION_STATUS, "ended", Status.ENDED),
    (loop.SESSION_STATUS, "cancelled", Status.CANCELLED),
    (streamloop.STREAM_STATUS, "draft", Status.DRAFT),
    (streamloop.STREAM_STATUS, "invalid", Status.DRAFT),
    (streamloop.STREAM_STATUS, "scheduled", Status.SCHEDULED),
    (streamloop.STREAM_STATUS, "preparing", Status.STARTING),
    (streamloop.STREAM_STATUS, "activating", Status.STARTING),
    (streamloop.STREAM_STATUS, "active", Status.LIVE),
    (streamloop.STREAM_STATUS, "failing", Status.LIVE),
    (streamloop.STREAM_STATUS, "stopping", Status.STOPPING),
    (streamloop.STREAM_STATUS, "stopped", Status.ENDED),
    (streamloop.STREAM_STATUS, "failed", Status.FAILED),
    (livepush.STREAM_STATUS, "deleted", Status.CANCELLED),
]


def documented(literal: Any) -> set[str]:
    return set(typing.get_args(literal))


# -- the status mapping ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mapping", "words"),
    [
        (loop.CALL_STATUS, documented(loop.CallStatus)),
        (loop.SESSION_STATUS, documented(loop.SessionStatus)),
        (streamloop.STREAM_STATUS, documented(streamloop.StreamState)),
    ],
    ids=["loop-call", "loop-session", "streamloop"],
)
def test_every_documented_status_maps(mapping: dict[str, Status], words: set[str]) -> None:
    assert words, "the contract's enum is empty"
    assert set(mapping) == words


@pytest.mark.parametrize(("mapping", "word", "status"), LIFECYCLE)
def test_lifecycle_table(mapping: dict[str, Status], word: str, status: Status) -> None:
    assert mapping[word] is status


def test_documented_enums_match_the_pages() -> None:
    assert documented(loop.CallStatus) == {"scheduled", "live", "ended", "errored"}
    assert documented(loop.SessionStatus) == {"scheduled", "live", "ended", "cancelled"}
    assert documented(loop.SessionKind) == {"live", "office_hours"}
    assert documented(streamloop.StreamState) == {
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
    }
    assert documented(streamloop.Quality) == {"q_720p", "q_1080p", "q_1440p", "q_2160p"}
    assert documented(streamloop.Framerate) == {"f_24", "f_25", "f_30", "f_60"}
    assert documented(livepush.StreamCategory) == {"simulcast", "schedule"}


@pytest.mark.parametrize(
    "event",
    [
        pytest.param(
            lambda: loop.normalize_call(loop.LoopCallDetail.model_validate(call_detail(status="paused"))),
            id="loop-call",
        ),
        pytest.param(
            lambda: loop.normalize_session(loop.LoopSession.model_validate(session_row(status="archived"))),
            id="loop-session",
        ),
        pytest.param(
            lambda: streamloop.normalize_stream(
                streamloop.StreamloopStream.model_validate(stream_full(state="rebooting"))
            ),
            id="streamloop",
        ),
    ],
)
def test_an_unknown_status_word_falls_back_and_is_kept(event: Any) -> None:
    normalized: Event = event()
    assert normalized.status is Status.DRAFT
    assert normalized.vendor_status in {"paused", "archived", "rebooting"}
    assert normalized.is_live is False


# -- Loop calls ----------------------------------------------------------------------------------------


def test_loop_call_created_row() -> None:
    event = loop.normalize_call(loop.LoopCall.model_validate(call_row()))
    assert event.source is Source.LOOP_CALL
    assert event.native_id == CALL_ID
    assert event.status is Status.SCHEDULED
    assert event.vendor_status == "scheduled"
    assert event.is_live is False
    assert event.title == "Morning check-in"
    assert event.host_id == "user_1"
    assert event.scheduled_start == T0
    assert event.scheduled_end is None
    assert event.created_at == datetime(2023, 11, 7, 5, 0, tzinfo=UTC)
    assert event.recordings == []
    assert event.extra == {
        "stream_call_id": "sc_123",
        "stream_call_type": "livestream",
        "recording_ready_at": None,
        "live": None,
    }


def test_loop_call_live_status_comes_from_the_provider() -> None:
    live = {"is_live": True, "current_session_id": "gs_1", "ended_at": None}
    event = loop.normalize_call(
        loop.LoopCallDetail.model_validate(call_detail(status="live", started_at="2023-11-07T05:32:00Z", live=live))
    )
    assert event.status is Status.LIVE
    assert event.is_live is True
    assert event.started_at == datetime(2023, 11, 7, 5, 32, tzinfo=UTC)
    assert event.extra["live"] == live


def test_loop_call_provider_view_wins_over_the_row() -> None:
    # The row still says live, but the provider's session has ended.
    live = {"is_live": False, "current_session_id": None, "ended_at": "2023-11-07T06:00:00Z"}
    event = loop.normalize_call(loop.LoopCallDetail.model_validate(call_detail(status="live", live=live)))
    assert event.status is Status.LIVE
    assert event.is_live is False
    assert event.extra["live"]["ended_at"] == datetime(2023, 11, 7, 6, 0, tzinfo=UTC)


def test_loop_call_without_live_falls_back_to_its_status() -> None:
    event = loop.normalize_call(loop.LoopCallDetail.model_validate(call_detail(status="live", live=None)))
    assert event.is_live is True
    assert event.extra["live"] is None


def test_loop_call_recording() -> None:
    event = loop.normalize_call(
        loop.LoopCall.model_validate(
            call_row(
                status="ended",
                ended_at="2023-11-07T07:00:00Z",
                recording_url="https://cdn.example/rec.mp4",
                recording_ready_at="2023-11-07T07:05:00Z",
            )
        )
    )
    ready = datetime(2023, 11, 7, 7, 5, tzinfo=UTC)
    assert event.status is Status.ENDED
    assert event.ended_at == datetime(2023, 11, 7, 7, 0, tzinfo=UTC)
    assert event.recordings == [Recording(url="https://cdn.example/rec.mp4", ready_at=ready)]
    assert event.extra["recording_ready_at"] == ready


def test_loop_call_errored_is_failed() -> None:
    event = loop.normalize_call(loop.LoopCall.model_validate(call_row(status="errored")))
    assert event.status is Status.FAILED
    assert event.vendor_status == "errored"


def test_loop_call_metadata_is_kept_when_loop_sends_it() -> None:
    event = loop.normalize_call(loop.LoopCall.model_validate(call_row(metadata={"a": 1})))
    assert event.metadata == {"a": 1}


def test_loop_call_get_answer_requires_live() -> None:
    with pytest.raises(pydantic.ValidationError):
        loop.LoopCallDetail.model_validate(call_row())


@pytest.mark.parametrize("field", ["id", "host_user_id", "title", "status", "stream_call_type", "created_at"])
def test_loop_call_required_fields(field: str) -> None:
    row = call_row()
    del row[field]
    with pytest.raises(pydantic.ValidationError):
        loop.LoopCall.model_validate(row)


@pytest.mark.parametrize("field", ["scheduled_at", "started_at", "recording_url", "stream_call_id"])
def test_loop_call_nullable_fields_must_still_be_present(field: str) -> None:
    row = call_row()
    del row[field]
    with pytest.raises(pydantic.ValidationError):
        loop.LoopCall.model_validate(row)


def test_loop_call_unknown_fields_are_accepted() -> None:
    call = loop.LoopCall.model_validate(call_row(region="eu-west-1"))
    assert call.model_extra == {"region": "eu-west-1"}


# -- Loop sessions -------------------------------------------------------------------------------------


def test_loop_session() -> None:
    event = loop.normalize_session(loop.LoopSession.model_validate(session_row()))
    assert event.source is Source.LOOP_SESSION
    assert event.native_id == SESSION_ID
    assert event.status is Status.SCHEDULED
    assert event.vendor_status == "scheduled"
    assert event.is_live is False
    assert event.title == "Office hours"
    assert event.host_id == "host_1"
    assert event.scheduled_start == T0
    assert event.updated_at == datetime(2023, 11, 7, 5, 10, tzinfo=UTC)
    assert event.metadata == {"topic": "sleep"}
    assert event.recordings == []
    assert event.extra == {
        "brand_id": "brand_1",
        "kind": "office_hours",
        "category": None,
        "max_participants": 25,
        "duration_minutes": 45,
        "registered_count": 3,
    }


@pytest.mark.parametrize(
    ("word", "status", "is_live"),
    [
        ("scheduled", Status.SCHEDULED, False),
        ("live", Status.LIVE, True),
        ("ended", Status.ENDED, False),
        ("cancelled", Status.CANCELLED, False),
    ],
)
def test_loop_session_statuses(word: str, status: Status, is_live: bool) -> None:
    event = loop.normalize_session(loop.LoopSession.model_validate(session_row(status=word)))
    assert (event.status, event.vendor_status, event.is_live) == (status, word, is_live)


def test_loop_session_recording_has_no_ready_time() -> None:
    event = loop.normalize_session(
        loop.LoopSession.model_validate(session_row(recording_url="https://cdn.example/s.mp4"))
    )
    assert event.recordings == [Recording(url="https://cdn.example/s.mp4", ready_at=None)]


def test_loop_session_kind_is_an_enum() -> None:
    with pytest.raises(pydantic.ValidationError):
        loop.LoopSession.model_validate(session_row(kind="webinar"))


def test_loop_session_scheduled_at_is_not_nullable() -> None:
    with pytest.raises(pydantic.ValidationError):
        loop.LoopSession.model_validate(session_row(scheduled_at=None))


def test_loop_session_list_cursor_is_optional() -> None:
    page = loop.LoopSessionList.model_validate({"sessions": [session_row()]})
    assert page.next_cursor is None
    assert [s.id for s in page.sessions] == [SESSION_ID]


# -- Streamloop ----------------------------------------------------------------------------------------


def test_streamloop_create_example_from_the_page() -> None:
    # The page's example answer: only `createdAt`, `id` and `name`.
    stream = streamloop.StreamloopStream.model_validate(
        {"createdAt": "2023-11-07T05:31:56Z", "id": "<string>", "name": "<string>"}
    )
    event = streamloop.normalize_stream(stream)
    assert event.source is Source.STREAMLOOP_STREAM
    assert event.native_id == "<string>"
    assert event.title == "<string>"
    assert event.created_at == T0
    assert event.status is Status.DRAFT
    assert event.vendor_status is None
    assert event.is_live is False
    assert event.metadata is None
    assert event.extra == {
        "state": None,
        "quality": None,
        "framerate": None,
        "destination_id": None,
        "playlist_ids": [],
        "stream_duration": None,
    }


def test_streamloop_full_stream() -> None:
    event = streamloop.normalize_stream(streamloop.StreamloopStream.model_validate(stream_full()))
    assert event.status is Status.LIVE
    assert event.vendor_status == "active"
    assert event.is_live is True
    assert event.title == "Lo-fi 24/7"
    assert event.scheduled_start == datetime(2023, 11, 8, tzinfo=UTC)
    assert event.scheduled_end == datetime(2023, 11, 9, tzinfo=UTC)
    assert event.started_at == datetime(2023, 11, 7, 5, 40, tzinfo=UTC)
    assert event.ended_at is None
    assert event.updated_at == datetime(2023, 11, 7, 6, 0, tzinfo=UTC)
    assert event.host_id is None
    assert event.extra == {
        "state": "active",
        "quality": "q_1080p",
        "framerate": "f_30",
        "destination_id": "dest_1",
        "playlist_ids": ["pl_1", "pl_2"],
        "stream_duration": 0,
    }


def test_streamloop_stopped_at_is_the_end() -> None:
    event = streamloop.normalize_stream(
        streamloop.StreamloopStream.model_validate(stream_full(state="stopped", stoppedAt="2023-11-07T08:00:00Z"))
    )
    assert event.status is Status.ENDED
    assert event.ended_at == datetime(2023, 11, 7, 8, 0, tzinfo=UTC)


@pytest.mark.parametrize("state", sorted(documented(streamloop.StreamState)))
def test_streamloop_is_live(state: str) -> None:
    event = streamloop.normalize_stream(streamloop.StreamloopStream.model_validate(stream_full(state=state)))
    assert event.is_live is (state in {"preparing", "activating", "active", "failing"})


@pytest.mark.parametrize(("field", "value"), [("quality", "q_480p"), ("framerate", "f_50")])
def test_streamloop_enums_are_checked(field: str, value: str) -> None:
    with pytest.raises(pydantic.ValidationError):
        streamloop.StreamloopStream.model_validate(stream_full(**{field: value}))


@pytest.mark.parametrize("field", ["id", "createdAt"])
def test_streamloop_required_fields(field: str) -> None:
    row = stream_full()
    del row[field]
    with pytest.raises(pydantic.ValidationError):
        streamloop.StreamloopStream.model_validate(row)


def test_streamloop_nullable_enums_may_be_null() -> None:
    stream = streamloop.StreamloopStream.model_validate(
        stream_full(name=None, state=None, quality=None, framerate=None)
    )
    assert (stream.name, stream.state, stream.quality, stream.framerate) == (None, None, None, None)


def test_streamloop_input_speaks_the_vendors_names() -> None:
    body = streamloop.StreamloopStreamInput(
        name="Lo-fi",
        destination_id="dest_1",
        playlist_ids=["pl_1"],
        schedule_start_at=T0,
        quality="q_720p",
        stream_key=None,
    )
    assert body.to_wire() == {
        "name": "Lo-fi",
        "destinationID": "dest_1",
        "playlistIDs": ["pl_1"],
        "scheduleStartAt": "2023-11-07T05:31:56Z",
        "quality": "q_720p",
        "streamKey": None,  # set explicitly: a PATCH clears it
    }


def test_streamloop_input_rejects_unknown_fields() -> None:
    with pytest.raises(pydantic.ValidationError):
        streamloop.StreamloopStreamInput.model_validate({"nmae": "typo"})


def test_streamloop_list_page() -> None:
    listing = streamloop.StreamloopStreamList.model_validate(
        {"data": [stream_full()], "page": {"hasMore": True, "nextCursor": "c2"}}
    )
    assert listing.page.has_more is True
    assert listing.page.next_cursor == "c2"
    assert len(listing.data) == 1


# -- Livepush ------------------------------------------------------------------------------------------


def test_livepush_created_stream_zone_is_an_id() -> None:
    event = livepush.normalize_stream(livepush.LivepushStream.model_validate(LIVEPUSH_CREATED))
    assert event.source is Source.LIVEPUSH_STREAM
    assert event.native_id == "st_xxxxxxxxxxxxx"
    assert event.status is Status.DRAFT
    assert event.vendor_status is None
    assert event.is_live is False
    assert event.title == "Luke Skywalker Apricot Fascinating"
    assert event.created_at == datetime(2019, 8, 24, 14, 15, 22, tzinfo=UTC)
    assert event.metadata == {"name": "Luke Skywalker Apricot Fascinating", "category": "simulcast"}
    assert event.extra == {
        "category": "simulcast",
        "chat_id": "mc_xxxxxxxxxxxx",
        "embed_id": "em_xxxxxxxxxxxx",
        "zone": "zn_xxxxxxxxx",
        "destinations": [{}],
        "is_disabled": None,
    }


def test_livepush_stream_by_id_zone_is_an_object() -> None:
    stream = livepush.LivepushStream.model_validate(LIVEPUSH_BY_ID)
    assert isinstance(stream.zone, livepush.LivepushZone)
    assert stream.zone.is_default is True
    event = livepush.normalize_stream(stream)
    assert event.title == "OUTPUT 1"
    assert event.extra["zone"] == "zn_xxxxxxxxx"
    assert event.extra["destinations"] == [
        {"id": "pb_1", "appName": "youtube", "label": "Main", "rtmpBase": "rtmp://a/live"}
    ]


def test_livepush_listed_stream_has_no_chat_or_embed() -> None:
    event = livepush.normalize_stream(livepush.LivepushStream.model_validate(LIVEPUSH_LISTED))
    assert event.extra["chat_id"] is None
    assert event.extra["embed_id"] is None
    assert event.extra["category"] == "schedule"
    assert event.extra["is_disabled"] is False
    assert event.extra["zone"] == "zn_xxxxxxxxx"


def test_livepush_stream_without_metadata() -> None:
    event = livepush.normalize_stream(livepush.LivepushStream.model_validate({"id": "st_bare"}))
    assert (event.title, event.metadata, event.extra["category"], event.extra["zone"]) == (
        None,
        None,
        None,
        None,
    )


def test_livepush_stream_list_is_a_bare_array() -> None:
    listing = livepush.LivepushStreamList.model_validate([LIVEPUSH_LISTED, LIVEPUSH_CREATED])
    assert [s.zone_id for s in listing.root] == ["zn_xxxxxxxxx", "zn_xxxxxxxxx"]


# -- every source: datetimes and the store round trip ---------------------------------------------------


def all_events() -> list[Event]:
    return [
        loop.normalize_call(
            loop.LoopCallDetail.model_validate(
                call_detail(live={"is_live": True, "current_session_id": "gs_1", "ended_at": None})
            )
        ),
        loop.normalize_session(loop.LoopSession.model_validate(session_row())),
        streamloop.normalize_stream(streamloop.StreamloopStream.model_validate(stream_full())),
        livepush.normalize_stream(livepush.LivepushStream.model_validate(LIVEPUSH_BY_ID)),
    ]


def test_offsets_become_utc() -> None:
    call = loop.LoopCall.model_validate(call_row(scheduled_at="2023-11-07T07:31:56+02:00"))
    assert call.scheduled_at == T0
    assert call.scheduled_at is not None and call.scheduled_at.tzinfo is UTC


def test_naive_vendor_timestamps_are_read_as_utc() -> None:
    stream = streamloop.StreamloopStream.model_validate(stream_full(createdAt="2023-11-07T05:31:56"))
    assert stream.created_at == T0
    assert stream.created_at.tzinfo is UTC


@pytest.mark.parametrize("event", all_events(), ids=lambda e: e.source.value)
def test_every_datetime_is_utc(event: Event) -> None:
    stamps = [
        event.scheduled_start,
        event.scheduled_end,
        event.started_at,
        event.ended_at,
        event.created_at,
        event.updated_at,
        *(r.ready_at for r in event.recordings),
    ]
    assert any(stamps)
    assert all(s.tzinfo is UTC for s in stamps if s is not None)


@pytest.mark.parametrize("event", all_events(), ids=lambda e: e.source.value)
def test_events_survive_the_store_document(event: Event) -> None:
    assert Event.from_doc(event.to_doc()) == event
