"""Loop Live's routes as the simulator serves them (loop-live-*.txt and vendors/README.md)."""

from __future__ import annotations

from typing import Any

from ..loop.calls import CREATE_CALL_FIELDS
from ..loop.models import CALL_STATUSES, REGISTRATION_ROLES, SESSION_KINDS, SESSION_STATUSES
from ..loop.sessions import ADMIN_UPDATE_SESSION_FIELDS, CREATE_SESSION_FIELDS, REGISTER_FIELDS, UPDATE_SESSION_FIELDS
from .schema import (
    DATE_TIME,
    Schema,
    answer,
    array,
    document,
    json_body,
    limit_parameter,
    nullable,
    obj,
    path_parameter,
    query_parameter,
    ref,
    request_schema,
    string,
)

VENDOR_URL = "https://live.platform.loop.health"

_CALL_PROPERTIES: dict[str, Schema] = {
    "id": string(fmt="uuid"),
    "host_user_id": string(),
    "title": string(),
    "scheduled_at": nullable(DATE_TIME),
    "started_at": nullable(DATE_TIME),
    "ended_at": nullable(DATE_TIME),
    "stream_call_id": nullable(string()),
    "stream_call_type": string(),
    "recording_url": nullable(string()),
    "recording_ready_at": nullable(DATE_TIME),
    "status": string(enum=CALL_STATUSES),
    "created_at": DATE_TIME,
    "updated_at": DATE_TIME,
}
_LIVE = nullable(
    obj(
        {"is_live": {"type": "boolean"}, "current_session_id": nullable(string()), "ended_at": nullable(DATE_TIME)},
        ["is_live", "current_session_id", "ended_at"],
    )
)
_SESSION_PROPERTIES: dict[str, Schema] = {
    "id": string(fmt="uuid"),
    "host_id": string(),
    "brand_id": string(),
    "title": string(),
    "kind": string(enum=SESSION_KINDS),
    "category": nullable(string()),
    "scheduled_at": DATE_TIME,
    "started_at": nullable(DATE_TIME),
    "ended_at": nullable(DATE_TIME),
    "status": string(enum=SESSION_STATUSES),
    "stream_call_id": nullable(string()),
    "max_participants": {"type": "integer"},
    "duration_minutes": nullable({"type": "integer"}),
    "recording_url": nullable(string()),
    "metadata": {"type": "object", "additionalProperties": {}},
    "created_at": DATE_TIME,
    "updated_at": DATE_TIME,
    "registered_count": {"type": "integer"},
    "is_registered": {"type": "boolean"},
}

SCHEMAS: dict[str, Schema] = {
    "Call": obj(_CALL_PROPERTIES, list(_CALL_PROPERTIES), description="A call row, as the create answer carries it"),
    "CallWithLive": obj(
        _CALL_PROPERTIES | {"live": _LIVE},
        [*_CALL_PROPERTIES, "live"],
        description="The call row and the provider's live status (null when the provider cannot be asked)",
    ),
    "CreateCallRequest": request_schema(CREATE_CALL_FIELDS),
    "Session": obj(_SESSION_PROPERTIES, list(_SESSION_PROPERTIES)),
    "SessionList": obj(
        {"sessions": array(ref("Session")), "next_cursor": nullable(string())}, ["sessions", "next_cursor"]
    ),
    "CreateSessionRequest": request_schema(CREATE_SESSION_FIELDS, {"kind": "live", "metadata": {}}),
    "UpdateSessionRequest": request_schema(UPDATE_SESSION_FIELDS),
    "AdminUpdateSessionRequest": request_schema(ADMIN_UPDATE_SESSION_FIELDS),
    "RegisterRequest": request_schema(REGISTER_FIELDS),
    "Registration": obj(
        {
            "id": string(fmt="uuid"),
            "session_id": string(fmt="uuid"),
            "guest_email": nullable(string()),
            "role": string(enum=REGISTRATION_ROLES),
            "created_at": DATE_TIME,
        },
        ["id", "session_id", "guest_email", "role", "created_at"],
    ),
    "Error": obj({"error": string(), "message": string()}, ["error", "message"]),
}


def _error(description: str) -> dict[str, Any]:
    return answer(description, ref("Error"))


_UNAUTHORIZED = _error("Missing or invalid bearer token (`unauthorized`)")
_NOT_FOUND = _error("Not found (`not_found`)")
_INVALID = _error("Validation error (`validation_error`); the message names the field")
_PROVIDER_FAILED = _error("Streaming provider error (`provider_error`)")
_PROVIDER_MISSING = _error("Streaming provider not configured (`provider_not_configured`)")

_CALL_ID = path_parameter("id", "the call's id (a UUID)")
_SESSION_ID = path_parameter("id", "the session's id (a UUID)")

PATHS: dict[str, Any] = {
    "/v1/live/calls": {
        "post": {
            "operationId": "createCall",
            "summary": "Create a GetStream Video-backed Loop Live call",
            "requestBody": json_body(ref("CreateCallRequest")),
            "responses": {
                "201": answer("Call created", ref("Call")),
                "400": _INVALID,
                "401": _UNAUTHORIZED,
                "502": _PROVIDER_FAILED,
                "503": _PROVIDER_MISSING,
            },
        }
    },
    "/v1/live/calls/{id}": {
        "get": {
            "operationId": "getCall",
            "summary": "Get call status (DB row + best-effort Stream live status)",
            "parameters": [_CALL_ID],
            "responses": {
                "200": answer("Call", ref("CallWithLive")),
                "401": _UNAUTHORIZED,
                "404": _NOT_FOUND,
            },
        }
    },
    "/v1/live/calls/{id}/end": {
        "post": {
            "operationId": "endCall",
            "summary": "End a call; ending one that is over changes nothing",
            "parameters": [_CALL_ID],
            "responses": {
                "200": answer("The call row", ref("CallWithLive")),
                "401": _UNAUTHORIZED,
                "404": _NOT_FOUND,
                "502": _PROVIDER_FAILED,
                "503": _PROVIDER_MISSING,
            },
        }
    },
    "/v1/sessions": {
        "post": {
            "operationId": "createSession",
            "summary": "Create a live session",
            "requestBody": json_body(ref("CreateSessionRequest")),
            "responses": {
                "201": answer("Session created", ref("Session")),
                "400": _INVALID,
                "401": _UNAUTHORIZED,
            },
        }
    },
    "/v1/sessions/{id}": {
        "get": {
            "operationId": "getSession",
            "summary": "One session",
            "parameters": [_SESSION_ID],
            "responses": {
                "200": answer("Session", ref("Session")),
                "401": _UNAUTHORIZED,
                "404": _NOT_FOUND,
            },
        },
        "patch": {
            "operationId": "updateSession",
            "summary": "Update a session (a status given here is ignored)",
            "parameters": [_SESSION_ID],
            "requestBody": json_body(ref("UpdateSessionRequest")),
            "responses": {
                "200": answer("Session", ref("Session")),
                "400": _INVALID,
                "401": _UNAUTHORIZED,
                "404": _NOT_FOUND,
            },
        },
    },
    "/v1/live/sessions": {
        "get": {
            "operationId": "listSessions",
            "summary": "List sessions in (scheduled_at, id) order",
            "parameters": [
                query_parameter("brand_id", string(), "only this brand's sessions"),
                query_parameter("host_id", string(), "only this host's sessions"),
                query_parameter("status", string(enum=SESSION_STATUSES), "only sessions in this status"),
                query_parameter("kind", string(enum=SESSION_KINDS), "only sessions of this kind"),
                query_parameter(
                    "upcoming", {"type": "boolean"}, "true: scheduled and still ahead; false: everything else"
                ),
                query_parameter("cursor", string(), "`next_cursor` of the page before"),
                limit_parameter(default=20, maximum=100),
            ],
            "responses": {
                "200": answer("One page of sessions", ref("SessionList")),
                "400": _INVALID,
                "401": _UNAUTHORIZED,
            },
        }
    },
    "/v1/admin/sessions/{id}": {
        "patch": {
            "operationId": "adminUpdateSession",
            "summary": "Admin update: also `status` (scheduled or cancelled), which is how a session is cancelled",
            "parameters": [_SESSION_ID],
            "requestBody": json_body(ref("AdminUpdateSessionRequest")),
            "responses": {
                "200": answer("Session", ref("Session")),
                "400": _INVALID,
                "401": _UNAUTHORIZED,
                "404": _NOT_FOUND,
            },
        }
    },
    "/v1/sessions/{id}/register": {
        "post": {
            "operationId": "registerForSession",
            "summary": "Register a person for a session",
            "parameters": [_SESSION_ID],
            "requestBody": json_body(ref("RegisterRequest")),
            "responses": {
                "201": answer("Registered", ref("Registration")),
                "400": _INVALID,
                "401": _UNAUTHORIZED,
                "404": _NOT_FOUND,
                "409": _error("Already registered (`already_registered`)"),
                "412": _error("Full (`session_full`) or not open (`registration_closed`)"),
            },
        }
    },
}


def build(server_url: str) -> dict[str, Any]:
    return document(
        title="Loop Live API",
        description="Loop Live calls and scheduled sessions. Errors are `{error, message}`; timestamps are UTC.",
        server_url=server_url,
        vendor_url=VENDOR_URL,
        paths=PATHS,
        schemas=SCHEMAS,
        security_schemes={"bearerAuth": {"type": "http", "scheme": "bearer"}},
        security=[{"bearerAuth": []}],
    )
