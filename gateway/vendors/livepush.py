"""Livepush: multistreaming streams (`https://octopus.livepush.io`).

Contract: `livepush-streams.txt` and the Livepush table of the vendors README. Livepush has no live-status
field and no pagination (lists are bare arrays), and its errors (401, 404) have no documented body.
A stream's `zone` is an id string in the create answer and an object everywhere else.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, ClassVar, Literal

import pydantic
from multidict import CIMultiDictProxy

from gateway.errors import VendorConflict, VendorError, VendorRejected
from gateway.model import Event, Source, Status, Vendor
from gateway.vendors.base import (
    Call,
    ClaimedElsewhere,
    CreateSender,
    CreateSpec,
    Page,
    SourceAdapter,
    UtcDateTime,
    VendorClient,
    as_raw,
    error_body,
    error_by_status,
    retry_after_seconds,
)
from gateway.vendors.requests import RequestContract, RequestModel, given

StreamCategory = Literal["simulcast", "schedule"]

#: Livepush has no status word: a stream that exists is a draft as far as anyone can tell, and one
#: Livepush no longer has was deleted.
STREAM_STATUS: dict[str, Status] = {"deleted": Status.CANCELLED}
EXISTING_STATUS = Status.DRAFT

#: how the vendor is named in a message to the caller
VENDOR_NAME = "Livepush"
#: how far Livepush's clock may run behind ours when a stream's `createdAt` is compared with our time
CLOCK_SKEW = timedelta(seconds=2)


class _Wire(pydantic.BaseModel):
    # The page marks no field required; only the id is needed to make sense of an object.
    model_config = pydantic.ConfigDict(extra="allow", validate_by_name=True, validate_by_alias=True)


class LivepushZone(_Wire):
    id: str
    name: str | None = None
    category: str | None = None
    host: str | None = None
    is_public: bool | None = pydantic.Field(None, alias="isPublic")
    is_default: bool | None = pydantic.Field(None, alias="isDefault")


class LivepushStreamMetadata(_Wire):
    name: str | None = None
    category: str | None = None


class LivepushStream(_Wire):
    """A stream as `GET /streams/mine`, `POST /streams` or `GET /streams/{id}` answers it."""

    id: str
    metadata: LivepushStreamMetadata | None = None
    created_at: UtcDateTime | None = pydantic.Field(None, alias="createdAt")
    is_disabled: bool | None = pydantic.Field(None, alias="isDisabled")
    config: dict[str, Any] | None = None
    destinations: list[dict[str, Any]] = pydantic.Field(default_factory=list)
    zone: LivepushZone | str | None = None
    # Only on create and get-by-id, not in the owner's list.
    chat_id: str | None = pydantic.Field(None, alias="chatId")
    embed_id: str | None = pydantic.Field(None, alias="embedId")
    unsafe_content: bool | None = pydantic.Field(None, alias="unsafeContent")
    has_validated: bool | None = pydantic.Field(None, alias="hasValidated")

    @property
    def zone_id(self) -> str | None:
        return self.zone.id if isinstance(self.zone, LivepushZone) else self.zone


class LivepushDestination(_Wire):
    id: str
    app_name: str | None = pydantic.Field(None, alias="appName")
    label: str | None = None
    rtmp_base: str | None = pydantic.Field(None, alias="rtmpBase")
    is_pinned: bool | None = pydantic.Field(None, alias="isPinned")
    is_disabled: bool | None = pydantic.Field(None, alias="isDisabled")
    updated_at: UtcDateTime | None = pydantic.Field(None, alias="updatedAt")


class LivepushRecording(_Wire):
    id: str
    stream: str | None = None
    stream_key: str | None = pydantic.Field(None, alias="streamKey")
    # Undocumented type: kept as Livepush sends it.
    time: Any = None
    updated_at: UtcDateTime | None = pydantic.Field(None, alias="updatedAt")


class LivepushDeleted(_Wire):
    success: bool


class LivepushSchedulerPlaylist(_Wire):
    """`PUT /streams/{id}/config/scheduler/playlist` answer; Livepush does not document the body, so
    nothing in it is required."""

    success: bool | None = None
    videos: list[str] | None = None


class LivepushErrorBody(_Wire):
    message: str | None = None


class LivepushCreateStreamRequest(RequestModel):
    """`POST /streams`."""

    category: StreamCategory
    # The page only says required; a stream without a name could never be found again by it.
    name: str = pydantic.Field(min_length=1)


class LivepushStreamList(pydantic.RootModel[list[LivepushStream]]):
    pass


class LivepushDestinationList(pydantic.RootModel[list[LivepushDestination]]):
    pass


class LivepushRecordingList(pydantic.RootModel[list[LivepushRecording]]):
    pass


class LivepushClient(VendorClient):
    #: a type prefix (`st_` for streams) and letters and digits
    native_id = re.compile(r"st_[0-9A-Za-z]{1,64}")
    vendor = Vendor.LIVEPUSH

    def error_for(self, status: int, data: Any, headers: CIMultiDictProxy[str]) -> VendorError:
        body = error_body(LivepushErrorBody, data)
        return error_by_status(
            self.vendor,
            status,
            message=body.message or f"Livepush answered {status}",
            retry_after=retry_after_seconds(headers),
        )

    async def list_streams(self) -> list[LivepushStream]:
        resp = await self.request("GET", "/streams/mine")
        return self.parse(LivepushStreamList, resp.data).root

    async def create_stream(self, category: StreamCategory, name: str) -> LivepushStream:
        return await self.send_create_stream(self.create_stream_request(category, name))

    def create_stream_request(self, category: StreamCategory, name: str) -> Call:
        return self.prepare("POST", "/streams", json={"category": category, "name": name})

    async def send_create_stream(self, call: Call) -> LivepushStream:
        return self.parse(LivepushStream, (await self.send(call)).data)

    async def get_stream(self, stream_id: str) -> LivepushStream:
        resp = await self.request("GET", "/streams/{id}", path={"id": stream_id})
        return self.parse(LivepushStream, resp.data)

    async def delete_stream(self, stream_id: str) -> LivepushDeleted:
        resp = await self.request("DELETE", "/streams/{id}", path={"id": stream_id})
        return self.parse(LivepushDeleted, resp.data)

    async def destinations(self) -> list[LivepushDestination]:
        resp = await self.request("GET", "/streams/me/destinations")
        return self.parse(LivepushDestinationList, resp.data).root

    async def recordings(self) -> list[LivepushRecording]:
        resp = await self.request("GET", "/streams/me/recordings")
        return self.parse(LivepushRecordingList, resp.data).root

    async def set_scheduler_playlist(self, stream_id: str, videos: Sequence[str]) -> LivepushSchedulerPlaylist:
        resp = await self.request(
            "PUT", "/streams/{id}/config/scheduler/playlist", path={"id": stream_id}, json={"videos": list(videos)}
        )
        return self.parse(LivepushSchedulerPlaylist, resp.data if resp.data is not None else {})


def normalize_stream(stream: LivepushStream) -> Event:
    metadata = stream.metadata
    return Event(
        raw=as_raw(stream),
        source=Source.LIVEPUSH_STREAM,
        native_id=stream.id,
        status=EXISTING_STATUS,
        vendor_status=None,
        is_live=False,  # Livepush gives no signal of a stream being on air
        title=metadata.name if metadata else None,
        created_at=stream.created_at,
        metadata=metadata.model_dump(exclude_unset=True) if metadata else None,
        extra={
            "category": metadata.category if metadata else None,
            "chat_id": stream.chat_id,
            "embed_id": stream.embed_id,
            "zone": stream.zone_id,
            "destinations": [dict(d) for d in stream.destinations],
            "is_disabled": stream.is_disabled,
        },
    )


class LivepushStreamAdapter(SourceAdapter):
    source = Source.LIVEPUSH_STREAM
    target_path: ClassVar[str] = "targets.livepush"
    create_drops: ClassVar[Mapping[str, str]] = {
        "scheduledStart": "Livepush keeps no schedule",
        "scheduledEnd": "Livepush keeps no schedule",
        "hostId": "Livepush streams have no host",
        "metadata": "Livepush keeps no metadata",
    }
    contract: ClassVar[RequestContract] = RequestContract(VENDOR_NAME, target_path, {"name": "title"})

    client: LivepushClient

    async def fetch(self, native_id: str) -> Event:
        return normalize_stream(await self.client.get_stream(native_id))

    async def fetch_many(self, native_ids: Sequence[str]) -> list[Event | VendorError | None]:
        """The owner's list has every stream, so one call answers a whole batch; one stream alone is read
        from its own endpoint, which answers less and also gives `chatId` and `embedId` (the list leaves
        them out)."""
        if len(native_ids) == 1:
            return [await self.fetch_one(native_ids[0])]
        try:
            streams = await self.client.list_streams()
        except VendorError as error:
            return [error for _ in native_ids]
        by_id = {s.id: s for s in streams}
        return [normalize_stream(by_id[i]) if i in by_id else None for i in native_ids]

    async def list_page(self, cursor: str | None) -> Page:
        streams = await self.client.list_streams()
        return Page([normalize_stream(s) for s in streams], None)

    async def delete(self, native_id: str) -> Event | None:
        answer = await self.client.delete_stream(native_id)
        if not answer.success:
            raise VendorRejected(self.vendor, f"Livepush did not delete stream {native_id}", status=200)
        return None

    def prepare_create(self, spec: CreateSpec, operation_id: str) -> dict[str, Any]:
        # Livepush keeps no schedule, host or metadata: those fields are for the event's other targets.
        options = self.contract.options(spec.options, {"category"})
        request = self.contract.check(LivepushCreateStreamRequest, options | given(name=spec.title))
        return request.model_dump(mode="json")

    def create_sender(self, body: dict[str, Any], *, idempotency_key: str) -> CreateSender:
        # Livepush takes no idempotency key; `find_created` looks for the stream by name instead.
        request = self.contract.check(LivepushCreateStreamRequest, body)
        call = self.client.create_stream_request(request.category, request.name)

        async def send() -> Event:
            return normalize_stream(await self.client.send_create_stream(call))

        return send

    async def find_created(
        self, body: dict[str, Any], *, operation_id: str, since: datetime, taken: ClaimedElsewhere
    ) -> Event | None:
        """Livepush keeps no metadata, so the stream is known by what the create gave it (name and
        category), by being made no earlier than the create was sent, and by no other operation having
        claimed it."""
        request = self.contract.check(LivepushCreateStreamRequest, body)
        since = since.replace(tzinfo=UTC) if since.tzinfo is None else since
        earliest = since - CLOCK_SKEW
        alike = [
            stream
            for stream in await self.client.list_streams()
            if stream.metadata is not None
            and stream.metadata.name == request.name
            and stream.metadata.category == request.category
            # A stream without a creation time cannot be shown to be this operation's.
            and stream.created_at is not None
            and stream.created_at >= earliest
        ]
        # Another create of the same name and category claimed its stream: that one is not ours.
        others = await taken([stream.id for stream in alike])
        matches = [stream for stream in alike if stream.id not in others]
        if len(matches) > 1:
            ids = ", ".join(stream.id for stream in matches)
            raise VendorConflict(
                self.vendor,
                f"operation {operation_id} is ambiguous: {len(matches)} Livepush streams named {request.name!r} "
                f"({request.category}) created since {earliest.isoformat()} ({ids})",
            )
        # The owner's list leaves out chatId and embedId, which the create answer would have carried.
        return await self.fetch(matches[0].id) if matches else None


CLIENT = LivepushClient
ADAPTERS = (LivepushStreamAdapter,)
