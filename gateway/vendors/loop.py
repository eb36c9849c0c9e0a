"""Loop Live: GetStream-backed calls and scheduled sessions (`https://live.platform.loop.health`).

Contract: `loop-live-create-call.txt`, `loop-live-get-call.txt`, `loop-live-create-session.txt`, and the
Loop table of the vendors README. Errors are JSON `{error, message}`; a 503 means Loop's streaming
provider is not configured (not that Loop is down), a 502 that the provider failed.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal, get_args

import orjson
import pydantic
from multidict import CIMultiDictProxy

from gateway.errors import BadUserInput, UnsupportedByVendor, VendorConflict, VendorError, VendorNotConfigured
from gateway.model import Event, Recording, Source, Status, Vendor
from gateway.vendors.base import (
    OPERATION_METADATA_KEY,
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

CallStatus = Literal["scheduled", "live", "ended", "errored"]
SessionStatus = Literal["scheduled", "live", "ended", "cancelled"]
SessionKind = Literal["live", "office_hours"]
RegistrationRole = Literal["host", "participant", "guest"]
AdminSessionStatus = Literal["scheduled", "cancelled"]

CALL_STATUS: dict[str, Status] = {
    "scheduled": Status.SCHEDULED,
    "live": Status.LIVE,
    "ended": Status.ENDED,
    "errored": Status.FAILED,
}
SESSION_STATUS: dict[str, Status] = {
    "scheduled": Status.SCHEDULED,
    "live": Status.LIVE,
    "ended": Status.ENDED,
    "cancelled": Status.CANCELLED,
}
#: What an undocumented status word becomes; the word itself is kept in `vendor_status`.
UNKNOWN_STATUS = Status.DRAFT
#: a caller's role word, as the Literal Loop takes
REGISTRATION_ROLES: dict[str, RegistrationRole] = {role: role for role in get_args(RegistrationRole)}

#: how the vendor is named in a message to the caller
VENDOR_NAME = "Loop Live"


class _Wire(pydantic.BaseModel):
    # Loop may add fields at any time; they are kept, never a reason to reject an answer.
    model_config = pydantic.ConfigDict(extra="allow")


class LoopCallLive(_Wire):
    is_live: bool
    current_session_id: str | None
    ended_at: UtcDateTime | None


class LoopCall(_Wire):
    """A call row, as `POST /v1/live/calls` and `POST .../end` answer it."""

    id: str
    host_user_id: str
    title: str
    scheduled_at: UtcDateTime | None
    started_at: UtcDateTime | None
    ended_at: UtcDateTime | None
    stream_call_id: str | None
    stream_call_type: str
    recording_url: str | None
    recording_ready_at: UtcDateTime | None
    # The documented words are `CallStatus`; an undocumented one is kept rather than losing the call.
    status: CallStatus | str
    created_at: UtcDateTime
    updated_at: UtcDateTime
    #: not in the contract's answer, though the request takes it
    metadata: dict[str, Any] | None = None


class LoopCallDetail(LoopCall):
    """`GET /v1/live/calls/{id}`: the row plus the provider's best-effort live status."""

    live: LoopCallLive | None


class LoopSession(_Wire):
    id: str
    host_id: str
    brand_id: str
    title: str
    kind: SessionKind
    category: str | None
    scheduled_at: UtcDateTime
    started_at: UtcDateTime | None
    ended_at: UtcDateTime | None
    status: SessionStatus | str
    stream_call_id: str | None
    max_participants: int
    duration_minutes: int | None
    recording_url: str | None
    metadata: dict[str, Any]
    created_at: UtcDateTime
    updated_at: UtcDateTime
    registered_count: int
    is_registered: bool


class LoopSessionList(_Wire):
    sessions: list[LoopSession]
    next_cursor: str | None = None


class LoopRegistration(_Wire):
    """`POST /v1/sessions/{id}/register` answers 201; Loop does not document the body, so nothing in it
    is required."""

    id: str | None = None
    session_id: str | None = None
    role: RegistrationRole | None = None
    guest_email: str | None = None
    created_at: UtcDateTime | None = None


class LoopErrorBody(_Wire):
    error: str | None = None
    message: str | None = None


def _iso(value: datetime) -> str:
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _with_operation(contract: RequestContract, metadata: Any, operation_id: str) -> dict[str, Any]:
    """The caller's metadata as plain JSON, carrying the operation id (which no caller value overrides:
    it is how an interrupted create is found again)."""
    if not isinstance(metadata, Mapping):
        raise contract.violation("metadata", "must be an object", "WRONG_TYPE")
    try:
        plain: dict[str, Any] = orjson.loads(orjson.dumps(metadata))
    except orjson.JSONEncodeError as exc:
        raise contract.violation("metadata", "must be JSON data", "WRONG_TYPE") from exc
    return {**plain, OPERATION_METADATA_KEY: operation_id}


def _host(option_name: str, spec: CreateSpec) -> tuple[Any, dict[str, str]]:
    """The target's own host option, else the event's `hostId`, and the path to blame if it is bad."""
    own = spec.options.get(option_name)
    if own is None and spec.host_id is not None:
        return spec.host_id, {option_name: "hostId"}
    return own, {}


class LoopCallRequest(RequestModel):
    """`POST /v1/live/calls`."""

    host_user_id: str = pydantic.Field(min_length=1)
    title: str = pydantic.Field(min_length=1)
    scheduled_at: RequestDateTime | None = None
    metadata: dict[str, Any] = pydantic.Field(default_factory=dict)


class LoopSessionRequest(RequestModel):
    """`POST /v1/sessions`."""

    host_id: str = pydantic.Field(min_length=1)
    brand_id: str = pydantic.Field(min_length=1)
    title: str = pydantic.Field(min_length=1)
    scheduled_at: RequestDateTime
    max_participants: int = pydantic.Field(gt=0)
    kind: SessionKind = "live"
    metadata: dict[str, Any] = pydantic.Field(default_factory=dict)


class LoopSessionPatch(RequestModel):
    """The fields of `PATCH /v1/sessions/{id}` that `updateLiveEvent` reaches."""

    title: str | None = pydantic.Field(None, min_length=1)
    scheduled_at: RequestDateTime | None = None


#: where the fields every Loop target shares come from in `createLiveEvent`'s input
LOOP_COMMON_PATHS = {"title": "title", "scheduled_at": "scheduledStart", "metadata": "metadata"}


def _provider_not_configured(body: LoopErrorBody) -> bool:
    return (body.error or "").lower() == "provider_not_configured" or "not configured" in (body.message or "")


class LoopClient(VendorClient):
    #: Loop's calls and sessions have UUIDs
    native_id = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
    vendor = Vendor.LOOP

    def error_for(self, status: int, data: Any, headers: CIMultiDictProxy[str]) -> VendorError:
        body = error_body(LoopErrorBody, data)
        message = body.message or f"Loop answered {status}"
        if status == 503 and _provider_not_configured(body):
            # Loop's own upstream is missing, which no retry will fix; any other 503 is Loop being down.
            return VendorNotConfigured(self.vendor, message, status=status, vendor_code=body.error)
        return error_by_status(
            self.vendor,
            status,
            message=message,
            vendor_code=body.error,
            retry_after=retry_after_seconds(headers),
        )

    # calls

    async def create_call(
        self,
        host_user_id: str,
        title: str,
        *,
        scheduled_at: datetime | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> LoopCall:
        return await self.send_create_call(
            self.create_call_request(host_user_id, title, scheduled_at=scheduled_at, metadata=metadata)
        )

    def create_call_request(
        self,
        host_user_id: str,
        title: str,
        *,
        scheduled_at: datetime | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Call:
        body: dict[str, Any] = {"host_user_id": host_user_id, "title": title}
        if scheduled_at is not None:
            body["scheduled_at"] = _iso(scheduled_at)
        if metadata is not None:
            body["metadata"] = metadata
        return self.prepare("POST", "/v1/live/calls", json=body)

    async def send_create_call(self, call: Call) -> LoopCall:
        return self.parse(LoopCall, (await self.send(call)).data)

    async def get_call(self, call_id: str) -> LoopCallDetail:
        resp = await self.request("GET", "/v1/live/calls/{id}", path={"id": call_id})
        return self.parse(LoopCallDetail, resp.data)

    async def end_call(self, call_id: str) -> LoopCall:
        resp = await self.request("POST", "/v1/live/calls/{id}/end", path={"id": call_id})
        return self.parse(LoopCall, resp.data)

    # sessions

    async def create_session(
        self,
        host_id: str,
        brand_id: str,
        title: str,
        scheduled_at: datetime,
        max_participants: int,
        *,
        kind: SessionKind | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> LoopSession:
        return await self.send_create_session(
            self.create_session_request(
                host_id, brand_id, title, scheduled_at, max_participants, kind=kind, metadata=metadata
            )
        )

    def create_session_request(
        self,
        host_id: str,
        brand_id: str,
        title: str,
        scheduled_at: datetime,
        max_participants: int,
        *,
        kind: SessionKind | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Call:
        body: dict[str, Any] = {
            "host_id": host_id,
            "brand_id": brand_id,
            "title": title,
            "scheduled_at": _iso(scheduled_at),
            "max_participants": max_participants,
        }
        if kind is not None:
            body["kind"] = kind
        if metadata is not None:
            body["metadata"] = metadata
        return self.prepare("POST", "/v1/sessions", json=body)

    async def send_create_session(self, call: Call) -> LoopSession:
        return self.parse(LoopSession, (await self.send(call)).data)

    async def get_session(self, session_id: str) -> LoopSession:
        resp = await self.request("GET", "/v1/sessions/{id}", path={"id": session_id})
        return self.parse(LoopSession, resp.data)

    async def list_sessions(
        self,
        *,
        cursor: str | None = None,
        limit: int | None = None,
        brand_id: str | None = None,
        host_id: str | None = None,
        status: SessionStatus | None = None,
        kind: SessionKind | None = None,
        upcoming: bool | None = None,
    ) -> LoopSessionList:
        params: dict[str, str | int] = {}
        for name, value in (
            ("cursor", cursor),
            ("limit", limit),
            ("brand_id", brand_id),
            ("host_id", host_id),
            ("status", status),
            ("kind", kind),
        ):
            if value is not None:
                params[name] = value
        if upcoming is not None:
            params["upcoming"] = "true" if upcoming else "false"
        resp = await self.request("GET", "/v1/live/sessions", params=params)
        return self.parse(LoopSessionList, resp.data)

    async def update_session(
        self,
        session_id: str,
        *,
        title: str | None = None,
        scheduled_at: datetime | None = None,
        max_participants: int | None = None,
        kind: SessionKind | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> LoopSession:
        """Change the fields given; the ones left as None stay as they are."""
        body: dict[str, Any] = {}
        if title is not None:
            body["title"] = title
        if scheduled_at is not None:
            body["scheduled_at"] = _iso(scheduled_at)
        if max_participants is not None:
            body["max_participants"] = max_participants
        if kind is not None:
            body["kind"] = kind
        if metadata is not None:
            body["metadata"] = metadata
        resp = await self.request("PATCH", "/v1/sessions/{id}", path={"id": session_id}, json=body)
        return self.parse(LoopSession, resp.data)

    async def admin_update_session(self, session_id: str, *, status: AdminSessionStatus) -> LoopSession:
        """The admin route is the only one that moves a session's status (cancelling is `cancelled`)."""
        resp = await self.request("PATCH", "/v1/admin/sessions/{id}", path={"id": session_id}, json={"status": status})
        return self.parse(LoopSession, resp.data)

    async def register(
        self, session_id: str, role: RegistrationRole, *, guest_email: str | None = None
    ) -> LoopRegistration:
        body: dict[str, Any] = {"role": role}
        if guest_email is not None:
            body["guest_email"] = guest_email
        resp = await self.request("POST", "/v1/sessions/{id}/register", path={"id": session_id}, json=body)
        return self.parse(LoopRegistration, resp.data if resp.data is not None else {})


def _recordings(url: str | None, ready_at: datetime | None) -> list[Recording]:
    return [Recording(url=url, ready_at=ready_at)] if url else []


def normalize_call(call: LoopCall) -> Event:
    live = call.live if isinstance(call, LoopCallDetail) else None
    return Event(
        raw=as_raw(call),
        source=Source.LOOP_CALL,
        native_id=call.id,
        status=CALL_STATUS.get(call.status, UNKNOWN_STATUS),
        vendor_status=call.status,
        # The provider's view is fresher than the row's status, when Loop managed to ask it.
        is_live=live.is_live if live is not None else call.status == "live",
        title=call.title,
        scheduled_start=call.scheduled_at,
        started_at=call.started_at,
        ended_at=call.ended_at,
        created_at=call.created_at,
        updated_at=call.updated_at,
        host_id=call.host_user_id,
        recordings=_recordings(call.recording_url, call.recording_ready_at),
        metadata=call.metadata,
        extra={
            "stream_call_id": call.stream_call_id,
            "stream_call_type": call.stream_call_type,
            "recording_ready_at": call.recording_ready_at,
            "live": {
                "is_live": live.is_live,
                "current_session_id": live.current_session_id,
                "ended_at": live.ended_at,
            }
            if live is not None
            else None,
        },
    )


def normalize_session(session: LoopSession) -> Event:
    return Event(
        raw=as_raw(session),
        source=Source.LOOP_SESSION,
        native_id=session.id,
        status=SESSION_STATUS.get(session.status, UNKNOWN_STATUS),
        vendor_status=session.status,
        is_live=session.status == "live",
        title=session.title,
        scheduled_start=session.scheduled_at,
        started_at=session.started_at,
        ended_at=session.ended_at,
        created_at=session.created_at,
        updated_at=session.updated_at,
        host_id=session.host_id,
        recordings=_recordings(session.recording_url, None),
        metadata=session.metadata,
        extra={
            "brand_id": session.brand_id,
            "kind": session.kind,
            "category": session.category,
            "max_participants": session.max_participants,
            "duration_minutes": session.duration_minutes,
            "registered_count": session.registered_count,
        },
    )


class LoopCallAdapter(SourceAdapter):
    source = Source.LOOP_CALL
    finds_by_likeness: ClassVar[bool] = False  # a call cannot be looked up at all
    can_list: ClassVar[bool] = False  # Loop documents no way to list calls
    target_path: ClassVar[str] = "targets.loopCall"
    create_drops: ClassVar[Mapping[str, str]] = {"scheduledEnd": "Loop Live calls have no scheduled end"}
    contract: ClassVar[RequestContract] = RequestContract(VENDOR_NAME, target_path, LOOP_COMMON_PATHS)

    client: LoopClient

    async def fetch(self, native_id: str) -> Event:
        return normalize_call(await self.client.get_call(native_id))

    async def stop(self, native_id: str) -> Event:
        return normalize_call(await self.client.end_call(native_id))

    def prepare_create(self, spec: CreateSpec, operation_id: str) -> dict[str, Any]:
        # Loop calls have no end: a scheduledEnd meant for the event's other targets is not Loop's to refuse.
        self.contract.options(spec.options, {"host_user_id"})
        host, renamed = _host("host_user_id", spec)
        data = given(
            host_user_id=host,
            title=spec.title,
            scheduled_at=spec.scheduled_start,
            metadata=_with_operation(self.contract, spec.metadata, operation_id),
        )
        return self.contract.check(LoopCallRequest, data, renamed=renamed).model_dump(mode="json")

    def create_sender(self, body: dict[str, Any], *, idempotency_key: str) -> CreateSender:
        # Loop takes no idempotency key; the operation id rides in the call's metadata instead.
        request = self.contract.check(LoopCallRequest, body)
        call = self.client.create_call_request(
            request.host_user_id, request.title, scheduled_at=request.scheduled_at, metadata=request.metadata
        )

        async def send() -> Event:
            return normalize_call(await self.client.send_create_call(call))

        return send

    async def find_created(
        self, body: dict[str, Any], *, operation_id: str, since: datetime, taken: ClaimedElsewhere
    ) -> Event | None:
        raise UnsupportedByVendor(
            self.vendor, "Loop Live documents no way to list calls, so a call cannot be found by its operation"
        )


class LoopSessionAdapter(SourceAdapter):
    source = Source.LOOP_SESSION
    finds_by_likeness: ClassVar[bool] = False  # by the operation id in its metadata
    target_path: ClassVar[str] = "targets.loopSession"
    create_drops: ClassVar[Mapping[str, str]] = {"scheduledEnd": "Loop Live sessions have no scheduled end"}
    update_fields: ClassVar[frozenset[str]] = frozenset({"title", "scheduledStart"})
    update_drops: ClassVar[Mapping[str, str]] = create_drops
    contract: ClassVar[RequestContract] = RequestContract(VENDOR_NAME, target_path, LOOP_COMMON_PATHS)
    #: sessions asked for per page while looking for an interrupted create
    find_page_size: ClassVar[int] = 100

    client: LoopClient

    async def fetch(self, native_id: str) -> Event:
        return normalize_session(await self.client.get_session(native_id))

    async def list_page(self, cursor: str | None) -> Page:
        page = await self.client.list_sessions(cursor=cursor, limit=100)
        return Page([normalize_session(s) for s in page.sessions], page.next_cursor)

    async def cancel(self, native_id: str) -> Event:
        return normalize_session(await self.client.admin_update_session(native_id, status="cancelled"))

    def prepare_create(self, spec: CreateSpec, operation_id: str) -> dict[str, Any]:
        options = self.contract.options(spec.options, {"host_id", "brand_id", "max_participants", "kind"})
        host, renamed = _host("host_id", spec)
        data = options | given(
            host_id=host,
            title=spec.title,
            scheduled_at=spec.scheduled_start,
            metadata=_with_operation(self.contract, spec.metadata, operation_id),
        )
        return self.contract.check(LoopSessionRequest, data, renamed=renamed).model_dump(mode="json")

    def create_sender(self, body: dict[str, Any], *, idempotency_key: str) -> CreateSender:
        # Loop takes no idempotency key; `find_created` finds the session by the operation id in metadata.
        request = self.contract.check(LoopSessionRequest, body)
        call = self.client.create_session_request(
            request.host_id,
            request.brand_id,
            request.title,
            request.scheduled_at,
            request.max_participants,
            kind=request.kind,
            metadata=request.metadata,
        )

        async def send() -> Event:
            return normalize_session(await self.client.send_create_session(call))

        return send

    async def find_created(
        self, body: dict[str, Any], *, operation_id: str, since: datetime, taken: ClaimedElsewhere
    ) -> Event | None:
        # The operation id names the session exactly, so `since` is not needed to tell sessions apart;
        # host and brand only narrow the listing.
        found: list[LoopSession] = []
        cursor: str | None = None
        while True:
            page = await self.client.list_sessions(
                cursor=cursor, limit=self.find_page_size, host_id=body.get("host_id"), brand_id=body.get("brand_id")
            )
            found += [s for s in page.sessions if s.metadata.get(OPERATION_METADATA_KEY) == operation_id]
            if not page.next_cursor:
                break
            cursor = page.next_cursor
        if len(found) > 1:
            # The operation created twice; which one to keep is for a person to say.
            ids = ", ".join(s.id for s in found)
            raise VendorConflict(
                self.vendor, f"operation {operation_id} is ambiguous: {len(found)} Loop Live sessions carry it ({ids})"
            )
        return normalize_session(found[0]) if found else None

    async def update(self, native_id: str, changes: EventChanges) -> Event:
        if changes.scheduled_end is not None:
            # Dropping it would report a change that never happened.
            raise UnsupportedByVendor(self.vendor, "scheduledEnd: Loop Live sessions have no scheduled end")
        patch = self.contract.check(LoopSessionPatch, given(title=changes.title, scheduled_at=changes.scheduled_start))
        if patch.title is None and patch.scheduled_at is None:
            return await self.fetch(native_id)
        session = await self.client.update_session(native_id, title=patch.title, scheduled_at=patch.scheduled_at)
        return normalize_session(session)

    async def register(self, native_id: str, *, role: str, guest_email: str | None) -> Event:
        known_role = REGISTRATION_ROLES.get(role)
        if known_role is None:
            roles = " or ".join(repr(r) for r in REGISTRATION_ROLES)
            raise BadUserInput(f"role: must be {roles} ({VENDOR_NAME})", field="role", reason="NOT_ALLOWED")
        await self.client.register(native_id, known_role, guest_email=guest_email)
        # The registration answer says nothing of the session; reading it again shows the new count.
        return await self.fetch(native_id)


CLIENT = LoopClient
ADAPTERS = (LoopCallAdapter, LoopSessionAdapter)
