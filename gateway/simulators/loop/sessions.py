"""Loop Live sessions: `/v1/sessions`, `/v1/live/sessions`, `/v1/admin/sessions`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace

from aiohttp import web

from ..errors import SimError
from ..state import sim_state
from ..validation import FieldSpec, InvalidBody, check_object, query_limit
from ..wire import json_response, read_json
from .http import CALLER
from .models import REGISTRATION_ROLES, SESSION_KINDS, SESSION_STATUSES, Registration, Session
from .store import SessionFilter

CREATE_SESSION_FIELDS = (
    FieldSpec("host_id", "string", required=True, min_length=1),
    FieldSpec("brand_id", "string", required=True, min_length=1),
    FieldSpec("title", "string", required=True, min_length=1),
    FieldSpec("scheduled_at", "date_time", required=True),
    FieldSpec("max_participants", "integer", required=True, exclusive_minimum=0),
    FieldSpec("kind", "string", enum=SESSION_KINDS),
    FieldSpec("metadata", "object"),
)
# The fields a host may change, checked as on create but none required.
UPDATE_SESSION_FIELDS = tuple(
    replace(spec, required=False)
    for spec in CREATE_SESSION_FIELDS
    if spec.name in ("title", "scheduled_at", "max_participants", "kind", "metadata")
)
ADMIN_UPDATE_SESSION_FIELDS = (
    *UPDATE_SESSION_FIELDS,
    FieldSpec("status", "string", enum=("scheduled", "cancelled")),
)
REGISTER_FIELDS = (
    FieldSpec("guest_email", "string", min_length=3),
    FieldSpec("role", "string", required=True, enum=REGISTRATION_ROLES),
)
# Registration is open only before and during a session.
_OPEN_FOR_REGISTRATION = ("scheduled", "live")

routes = web.RouteTableDef()


@routes.post("/v1/sessions")
async def create_session(request: web.Request) -> web.Response:
    state = sim_state(request)
    fields = check_object(await read_json(request), CREATE_SESSION_FIELDS)
    now = state.clock.now()
    session = Session(
        id=str(uuid.uuid4()),
        host_id=fields["host_id"],
        brand_id=fields["brand_id"],
        title=fields["title"],
        scheduled_at=fields["scheduled_at"],
        max_participants=fields["max_participants"],
        kind=fields.get("kind", "live"),
        metadata=fields.get("metadata", {}),
        created_at=now,
        updated_at=now,
    )
    state.loop.sessions[session.id] = session
    return json_response(session.wire(request[CALLER]), 201)


@routes.get("/v1/sessions/{id}")
async def get_session(request: web.Request) -> web.Response:
    session = sim_state(request).loop.session(request.match_info["id"])
    return json_response(session.wire(request[CALLER]))


@routes.get("/v1/live/sessions")
async def list_sessions(request: web.Request) -> web.Response:
    state = sim_state(request)
    wanted = _session_filter(request.query)
    limit = query_limit(request.query, default=20, maximum=100)
    page, next_cursor = state.loop.list_sessions(wanted, state.clock.now(), limit, request.query.get("cursor"))
    caller = request[CALLER]
    return json_response({"sessions": [s.wire(caller) for s in page], "next_cursor": next_cursor})


def _session_filter(query: Mapping[str, str]) -> SessionFilter:
    status = query.get("status")
    if status is not None and status not in SESSION_STATUSES:
        raise InvalidBody("status", f"must be one of {', '.join(SESSION_STATUSES)}")
    kind = query.get("kind")
    if kind is not None and kind not in SESSION_KINDS:
        raise InvalidBody("kind", f"must be one of {', '.join(SESSION_KINDS)}")
    upcoming: bool | None = None
    if (raw := query.get("upcoming")) is not None:
        if raw not in ("true", "false"):
            raise InvalidBody("upcoming", "must be true or false")
        upcoming = raw == "true"
    return SessionFilter(
        brand_id=query.get("brand_id"),
        host_id=query.get("host_id"),
        status=status,
        kind=kind,
        upcoming=upcoming,
    )


@routes.patch("/v1/sessions/{id}")
async def update_session(request: web.Request) -> web.Response:
    return await _update(request, UPDATE_SESSION_FIELDS)


@routes.patch("/v1/admin/sessions/{id}")
async def admin_update_session(request: web.Request) -> web.Response:
    return await _update(request, ADMIN_UPDATE_SESSION_FIELDS)


async def _update(request: web.Request, allowed: tuple[FieldSpec, ...]) -> web.Response:
    state = sim_state(request)
    session = state.loop.session(request.match_info["id"])
    changes = check_object(await read_json(request), allowed)
    # The checked field names are the session's attribute names.
    for name, value in changes.items():
        setattr(session, name, value)
    session.updated_at = state.clock.now()
    return json_response(session.wire(request[CALLER]))


@routes.post("/v1/sessions/{id}/register")
async def register(request: web.Request) -> web.Response:
    state = sim_state(request)
    session = state.loop.session(request.match_info["id"])
    fields = check_object(await read_json(request), REGISTER_FIELDS)
    guest_email: str | None = fields.get("guest_email")
    registrant = guest_email.lower() if guest_email else request[CALLER]
    if session.status not in _OPEN_FOR_REGISTRATION:
        raise SimError(412, "REGISTRATION_CLOSED", f"session is {session.status}")
    if registrant in session.registrants:
        raise SimError(409, "ALREADY_REGISTERED", "already registered for this session")
    if len(session.registrants) >= session.max_participants:
        raise SimError(412, "SESSION_FULL", f"session is full ({session.max_participants} registered)")
    now = state.clock.now()
    session.registrants.append(registrant)
    session.updated_at = now
    registration = Registration(
        id=str(uuid.uuid4()),
        session_id=session.id,
        registrant=registrant,
        guest_email=guest_email,
        role=fields["role"],
        created_at=now,
    )
    state.loop.registrations.append(registration)
    return json_response(registration.wire(), 201)
