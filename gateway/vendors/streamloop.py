"""Streamloop: 24/7 playlist streams to YouTube (`https://api.streamloop.app/v1`).

Contract: `streamloop-create-stream.txt` and the Streamloop table of the vendors README. Errors are
`application/problem+json` with an UPPER_SNAKE `code`, which says more than the status does; POST and
PATCH take an `Idempotency-Key` and a replayed answer carries `Idempotency-Replayed: true`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, ClassVar, Literal

import pydantic
from multidict import CIMultiDictProxy
from pydantic_core import PydanticCustomError

from gateway.errors import (
    BadUserInput,
    IdempotencyKeyReused,
    UnsupportedByVendor,
    VendorAuthError,
    VendorConflict,
    VendorError,
    VendorNotConfigured,
    VendorNotFound,
    VendorRateLimited,
)
from gateway.model import Event, Source, Status, Vendor
from gateway.vendors.base import (
    IDEMPOTENCY_HEADER,
    Call,
    ClaimedElsewhere,
    CreateSender,
    CreateSpec,
    EventChanges,
    Page,
    SourceAdapter,
    UtcDateTime,
    VendorClient,
    as_raw,
    error_body,
    error_by_status,
    retry_after_seconds,
)
from gateway.vendors.requests import RequestContract, RequestDateTime, RequestModel, given

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
Quality = Literal["q_720p", "q_1080p", "q_1440p", "q_2160p"]
Framerate = Literal["f_24", "f_25", "f_30", "f_60"]
StreamBackend = Literal["ffmpeg", "manifest"]
StreamDestination = Literal["youtube"]

STREAM_STATUS: dict[str, Status] = {
    "draft": Status.DRAFT,
    "invalid": Status.DRAFT,
    "scheduled": Status.SCHEDULED,
    "preparing": Status.STARTING,
    "activating": Status.STARTING,
    "active": Status.LIVE,
    "failing": Status.LIVE,
    "stopping": Status.STOPPING,
    "stopped": Status.ENDED,
    "failed": Status.FAILED,
}
#: States in which the stream is on air (or trying to be); `failing` is still broadcasting.
LIVE_STATES = frozenset({"preparing", "activating", "active", "failing"})
#: What an undocumented or absent state becomes; the word itself is kept in `vendor_status`.
UNKNOWN_STATUS = Status.DRAFT

#: how the vendor is named in a message to the caller
VENDOR_NAME = "Streamloop"


class _Wire(pydantic.BaseModel):
    # Field names are Streamloop's camelCase (with its `ID`/`IDs` spelling) on the wire, snake_case here.
    model_config = pydantic.ConfigDict(extra="allow", validate_by_name=True, validate_by_alias=True)


class StreamloopStream(_Wire):
    id: str
    created_at: UtcDateTime = pydantic.Field(alias="createdAt")
    name: str | None = None
    # The documented words are `StreamState`; an undocumented one is kept rather than losing the stream.
    state: StreamState | str | None = None
    quality: Quality | None = None
    framerate: Framerate | None = None
    # Not on the create page's answer; read from the create input and the README.
    updated_at: UtcDateTime | None = pydantic.Field(None, alias="updatedAt")
    destination_id: str | None = pydantic.Field(None, alias="destinationID")
    playlist_ids: list[str] | None = pydantic.Field(None, alias="playlistIDs")
    prepared_playlist_ids: list[str] | None = pydantic.Field(None, alias="preparedPlaylistIDs")
    stream_duration: int | None = pydantic.Field(None, alias="streamDuration")
    schedule_start_at: UtcDateTime | None = pydantic.Field(None, alias="scheduleStartAt")
    schedule_end_at: UtcDateTime | None = pydantic.Field(None, alias="scheduleEndAt")
    started_at: UtcDateTime | None = pydantic.Field(None, alias="startedAt")
    stopped_at: UtcDateTime | None = pydantic.Field(None, alias="stoppedAt")
    agent_mode_enabled: bool | None = pydantic.Field(None, alias="agentModeEnabled")
    run_backup_stream: bool | None = pydantic.Field(None, alias="runBackupStream")
    stream_backend: StreamBackend | None = pydantic.Field(None, alias="streamBackend")
    stream_destination: StreamDestination | None = pydantic.Field(None, alias="streamDestination")


class StreamloopStreamInput(_Wire):
    """`CreateStreamInput`, also the body of a PATCH; only the fields set are sent."""

    model_config = pydantic.ConfigDict(extra="forbid", validate_by_name=True, validate_by_alias=True)

    name: str | None = None
    agent_mode_enabled: bool | None = pydantic.Field(None, alias="agentModeEnabled")
    audio_upload_object_id: str | None = pydantic.Field(None, alias="audioUploadObjectID")
    destination_id: str | None = pydantic.Field(None, alias="destinationID")
    framerate: Framerate | None = None
    playlist_ids: list[str] | None = pydantic.Field(None, alias="playlistIDs")
    prepared_playlist_ids: list[str] | None = pydantic.Field(None, alias="preparedPlaylistIDs")
    quality: Quality | None = None
    run_backup_stream: bool | None = pydantic.Field(None, alias="runBackupStream")
    schedule_end_at: datetime | None = pydantic.Field(None, alias="scheduleEndAt")
    schedule_start_at: datetime | None = pydantic.Field(None, alias="scheduleStartAt")
    stream_backend: StreamBackend | None = pydantic.Field(None, alias="streamBackend")
    stream_destination: StreamDestination | None = pydantic.Field(None, alias="streamDestination")
    stream_duration: int | None = pydantic.Field(None, alias="streamDuration")
    stream_key: str | None = pydantic.Field(None, alias="streamKey")
    stream_state_id: str | None = pydantic.Field(None, alias="streamStateID")
    video_upload_object_id: str | None = pydantic.Field(None, alias="videoUploadObjectID")
    youtube_settings_id: str | None = pydantic.Field(None, alias="youtubeSettingsID")

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_unset=True)


class StreamloopWindow(RequestModel):
    """A stream's schedule, as create, PATCH and `POST /streams/{id}/schedule` take it."""

    model_config = pydantic.ConfigDict(validate_by_name=True, validate_by_alias=True)

    schedule_start_at: RequestDateTime | None = pydantic.Field(None, alias="scheduleStartAt")
    schedule_end_at: RequestDateTime | None = pydantic.Field(None, alias="scheduleEndAt")

    @pydantic.field_validator("schedule_end_at")
    @classmethod
    def _end_after_start(cls, end: datetime | None, info: pydantic.ValidationInfo) -> datetime | None:
        start = info.data.get("schedule_start_at")
        if end is not None and start is not None and end <= start:
            raise PydanticCustomError("end_before_start", "must be after the scheduled start")
        return end


class StreamloopCreateRequest(StreamloopWindow):
    """`CreateStreamInput`, as far as `createLiveEvent` fills it."""

    name: str
    quality: Quality | None = None
    framerate: Framerate | None = None
    playlist_ids: list[str] | None = pydantic.Field(None, alias="playlistIDs")
    destination_id: str | None = pydantic.Field(None, alias="destinationID")
    # The page says only "integer"; a negative duration has no meaning when 0 already means never.
    stream_duration: int | None = pydantic.Field(None, ge=0, alias="streamDuration")
    stream_key: str | None = pydantic.Field(None, alias="streamKey")
    run_backup_stream: bool | None = pydantic.Field(None, alias="runBackupStream")
    agent_mode_enabled: bool | None = pydantic.Field(None, alias="agentModeEnabled")

    def to_wire(self) -> dict[str, Any]:
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


#: the target's options, which are the request model's field names
STREAM_OPTIONS = frozenset(StreamloopCreateRequest.model_fields) - {"name", "schedule_start_at", "schedule_end_at"}


class StreamloopPageInfo(_Wire):
    has_more: bool = pydantic.Field(alias="hasMore")
    next_cursor: str | None = pydantic.Field(None, alias="nextCursor")


class StreamloopStreamList(_Wire):
    data: list[StreamloopStream]
    page: StreamloopPageInfo


class ProblemDetails(_Wire):
    type: str | None = None
    title: str | None = None
    status: int | None = None
    detail: str | None = None
    code: str | None = None


@dataclass(slots=True)
class StreamloopWrite:
    """A stream as a POST or PATCH left it; `replayed` when Streamloop answered from its idempotency store
    instead of doing the work again."""

    stream: StreamloopStream
    replayed: bool


StreamBody = StreamloopStreamInput | Mapping[str, Any]

#: Codes whose meaning the status alone would not carry (or would carry wrongly).
_ERROR_BY_CODE: dict[str, type[VendorError]] = {
    "NOT_FOUND": VendorNotFound,
    "STREAM_ILLEGAL_TRANSITION": VendorConflict,
    "IMMUTABLE_WHILE_LIVE": VendorConflict,
    "IDEMPOTENCY_KEY_REUSED": IdempotencyKeyReused,
    "WORKSPACE_REQUIRED": VendorNotConfigured,
    "UNAUTHORIZED": VendorAuthError,
}


def _body(body: StreamBody) -> dict[str, Any]:
    if isinstance(body, StreamloopStreamInput):
        return body.to_wire()
    return dict(body)


class StreamloopClient(VendorClient):
    #: `stream_` and a ULID (Crockford base32, 26 characters)
    native_id = re.compile(r"stream_[0-9A-HJKMNP-TV-Za-hjkmnp-tv-z]{26}")
    vendor = Vendor.STREAMLOOP

    def auth_headers(self) -> dict[str, str]:
        # An API key, when given, is used instead of the bearer token; the workspace goes with it (left
        # out, Streamloop says WORKSPACE_REQUIRED, which is a configuration problem worth surfacing).
        api_key = getattr(self.settings, "api_key", None)
        if api_key is None:
            return super().auth_headers()
        headers = {"X-API-Key": api_key.get_secret_value()}
        workspace_id = getattr(self.settings, "workspace_id", None)
        if workspace_id:
            headers["X-Workspace-Id"] = workspace_id
        return headers

    def error_for(self, status: int, data: Any, headers: CIMultiDictProxy[str]) -> VendorError:
        problem = error_body(ProblemDetails, data)
        message = problem.detail or problem.title or f"Streamloop answered {status}"
        code = problem.code
        retry_after = retry_after_seconds(headers)
        if code == "RATE_LIMITED":
            return VendorRateLimited(self.vendor, message, status=status, vendor_code=code, retry_after=retry_after)
        if code is not None and (cls := _ERROR_BY_CODE.get(code)) is not None:
            return cls(self.vendor, message, status=status, vendor_code=code)
        return error_by_status(self.vendor, status, message=message, vendor_code=code, retry_after=retry_after)

    def _write(self, resp_data: Any, headers: CIMultiDictProxy[str]) -> StreamloopWrite:
        replayed = headers.get("Idempotency-Replayed", "").lower() == "true"
        return StreamloopWrite(self.parse(StreamloopStream, resp_data), replayed)

    @staticmethod
    def _idempotency(key: str | None) -> dict[str, str] | None:
        return {IDEMPOTENCY_HEADER: key} if key else None

    async def create_stream(self, body: StreamBody, *, idempotency_key: str | None = None) -> StreamloopWrite:
        return await self.send_create_stream(self.create_stream_request(body, idempotency_key=idempotency_key))

    def create_stream_request(self, body: StreamBody, *, idempotency_key: str | None = None) -> Call:
        return self.prepare("POST", "/streams", json=_body(body), headers=self._idempotency(idempotency_key))

    async def send_create_stream(self, call: Call) -> StreamloopWrite:
        resp = await self.send(call)
        return self._write(resp.data, resp.headers)

    async def list_streams(self, *, limit: int = 100, cursor: str | None = None) -> StreamloopStreamList:
        params: dict[str, str | int] = {"limit": limit}
        if cursor is not None:
            params["cursor"] = cursor
        resp = await self.request("GET", "/streams", params=params)
        return self.parse(StreamloopStreamList, resp.data)

    async def get_stream(self, stream_id: str) -> StreamloopStream:
        resp = await self.request("GET", "/streams/{id}", path={"id": stream_id})
        return self.parse(StreamloopStream, resp.data)

    async def update_stream(
        self, stream_id: str, patch: StreamBody, *, idempotency_key: str | None = None
    ) -> StreamloopWrite:
        resp = await self.request(
            "PATCH",
            "/streams/{id}",
            path={"id": stream_id},
            json=_body(patch),
            headers=self._idempotency(idempotency_key),
        )
        return self._write(resp.data, resp.headers)

    async def delete_stream(self, stream_id: str) -> None:
        await self.request("DELETE", "/streams/{id}", path={"id": stream_id})

    async def start_stream(self, stream_id: str) -> StreamloopStream:
        resp = await self.request("POST", "/streams/{id}/start", path={"id": stream_id})
        return self.parse(StreamloopStream, resp.data)

    async def stop_stream(self, stream_id: str) -> StreamloopStream:
        resp = await self.request("POST", "/streams/{id}/stop", path={"id": stream_id})
        return self.parse(StreamloopStream, resp.data)

    async def schedule_stream(self, stream_id: str, start: datetime, end: datetime | None = None) -> StreamloopStream:
        window = (
            StreamloopStreamInput(schedule_start_at=start)
            if end is None
            else StreamloopStreamInput(schedule_start_at=start, schedule_end_at=end)
        )
        resp = await self.request("POST", "/streams/{id}/schedule", path={"id": stream_id}, json=window.to_wire())
        return self.parse(StreamloopStream, resp.data)


def normalize_stream(stream: StreamloopStream) -> Event:
    state = stream.state
    return Event(
        raw=as_raw(stream),
        source=Source.STREAMLOOP_STREAM,
        native_id=stream.id,
        status=STREAM_STATUS.get(state, UNKNOWN_STATUS) if state is not None else UNKNOWN_STATUS,
        vendor_status=state,
        is_live=state in LIVE_STATES,
        title=stream.name,
        scheduled_start=stream.schedule_start_at,
        scheduled_end=stream.schedule_end_at,
        started_at=stream.started_at,
        ended_at=stream.stopped_at,
        created_at=stream.created_at,
        updated_at=stream.updated_at,
        extra={
            "state": state,
            "quality": stream.quality,
            "framerate": stream.framerate,
            "destination_id": stream.destination_id,
            "playlist_ids": list(stream.playlist_ids or []),
            "stream_duration": stream.stream_duration,
        },
    )


class StreamloopStreamAdapter(SourceAdapter):
    source = Source.STREAMLOOP_STREAM
    idempotent_create: ClassVar[bool] = True
    finds_by_likeness: ClassVar[bool] = False  # re-sent with its idempotency key, never looked up
    target_path: ClassVar[str] = "targets.streamloop"
    create_drops: ClassVar[Mapping[str, str]] = {
        "hostId": "Streamloop streams have no host",
        "metadata": "Streamloop keeps no metadata",
    }
    update_fields: ClassVar[frozenset[str]] = frozenset({"title", "scheduledStart", "scheduledEnd"})
    contract: ClassVar[RequestContract] = RequestContract(
        VENDOR_NAME,
        target_path,
        {"name": "title", "schedule_start_at": "scheduledStart", "schedule_end_at": "scheduledEnd"},
    )

    client: StreamloopClient

    async def fetch(self, native_id: str) -> Event:
        return normalize_stream(await self.client.get_stream(native_id))

    async def list_page(self, cursor: str | None) -> Page:
        listing = await self.client.list_streams(limit=100, cursor=cursor)
        next_cursor = listing.page.next_cursor if listing.page.has_more else None
        return Page([normalize_stream(s) for s in listing.data], next_cursor)

    async def start(self, native_id: str) -> Event:
        return normalize_stream(await self.client.start_stream(native_id))

    async def stop(self, native_id: str) -> Event:
        return normalize_stream(await self.client.stop_stream(native_id))

    async def delete(self, native_id: str) -> Event | None:
        await self.client.delete_stream(native_id)
        return None

    def prepare_create(self, spec: CreateSpec, operation_id: str) -> dict[str, Any]:
        # Streamloop keeps no metadata, so the operation id has nowhere to go; the idempotency key
        # de-duplicates instead.
        options = self.contract.options(spec.options, STREAM_OPTIONS)
        data = options | given(
            name=spec.title, schedule_start_at=spec.scheduled_start, schedule_end_at=spec.scheduled_end
        )
        return self.contract.check(StreamloopCreateRequest, data).to_wire()

    def create_sender(self, body: dict[str, Any], *, idempotency_key: str) -> CreateSender:
        # The body goes out exactly as journaled: a replay matches only the same body under the same key.
        call = self.client.create_stream_request(body, idempotency_key=idempotency_key)

        async def send() -> Event:
            return normalize_stream((await self.client.send_create_stream(call)).stream)

        return send

    async def find_created(
        self, body: dict[str, Any], *, operation_id: str, since: datetime, taken: ClaimedElsewhere
    ) -> Event | None:
        raise UnsupportedByVendor(
            self.vendor,
            "Streamloop keeps no metadata to find a stream by; re-send the create with its idempotency key",
        )

    async def update(self, native_id: str, changes: EventChanges) -> Event:
        window = self.contract.check(
            StreamloopWindow, given(schedule_start_at=changes.scheduled_start, schedule_end_at=changes.scheduled_end)
        )
        start, end = window.schedule_start_at, window.schedule_end_at
        if start is not None and end is None:
            # The schedule route clears an end it is not sent, and a field left out of an update stays as it
            # is: send the stream's planned end along, checked before anything is changed.
            end = (await self.client.get_stream(native_id)).schedule_end_at
            if end is not None and end <= start:
                raise BadUserInput(
                    f"scheduledEnd: the stream's planned end ({end.isoformat()}) is not after the new start; "
                    "give a new scheduledEnd with it",
                    field="scheduledEnd",
                    reason="END_BEFORE_START",
                )
        patch: dict[str, Any] = given(name=changes.title)
        if start is None and end is not None:
            patch["schedule_end_at"] = end
        stream: StreamloopStream | None = None
        if patch:
            stream = (await self.client.update_stream(native_id, StreamloopStreamInput.model_validate(patch))).stream
        if start is not None:
            # The schedule route, not a PATCH: it also moves a stopped or failed stream back to scheduled.
            stream = await self.client.schedule_stream(native_id, start, end)
        return normalize_stream(stream) if stream is not None else await self.fetch(native_id)


CLIENT = StreamloopClient
ADAPTERS = (StreamloopStreamAdapter,)
