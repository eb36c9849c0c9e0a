"""Streamloop's routes as the simulator serves them (streamloop-create-stream.txt and vendors/README.md)."""

from __future__ import annotations

from typing import Any

from ..streamloop.http import PROBLEM_JSON
from ..streamloop.models import FRAMERATES, QUALITIES, SCHEDULE_FIELDS, STATES, STREAM_INPUT_FIELDS
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

VENDOR_URL = "https://api.streamloop.app/v1"

SCHEMAS: dict[str, Schema] = {
    "Stream": obj(
        {
            "createdAt": DATE_TIME,
            "id": string(),
            "framerate": nullable(string(enum=FRAMERATES)),
            "name": nullable(string()),
            "quality": nullable(string(enum=QUALITIES)),
            "state": nullable(string(enum=STATES)),
            "updatedAt": DATE_TIME,
            "destinationID": nullable(string()),
            "playlistIDs": array(string()),
            "preparedPlaylistIDs": array(string()),
            "streamDuration": nullable({"type": "integer"}),
            "scheduleStartAt": nullable(DATE_TIME),
            "scheduleEndAt": nullable(DATE_TIME),
            "startedAt": nullable(DATE_TIME),
            "stoppedAt": nullable(DATE_TIME),
            "agentModeEnabled": nullable({"type": "boolean"}),
            "runBackupStream": nullable({"type": "boolean"}),
            "streamBackend": nullable(string(enum=("ffmpeg", "manifest"))),
            "streamDestination": nullable(string(enum=("youtube",))),
        },
        ["createdAt", "id"],
    ),
    "StreamPage": obj(
        {
            "data": array(ref("Stream")),
            "page": obj({"hasMore": {"type": "boolean"}, "nextCursor": nullable(string())}, ["hasMore", "nextCursor"]),
        },
        ["data", "page"],
    ),
    "CreateStreamInput": request_schema(STREAM_INPUT_FIELDS),
    "UpdateStreamInput": request_schema(STREAM_INPUT_FIELDS),
    "ScheduleInput": request_schema(SCHEDULE_FIELDS),
    "Problem": obj(
        {
            "type": string(),
            "title": string(),
            "status": {"type": "integer"},
            "detail": string(),
            "code": string(pattern="^[A-Z][A-Z0-9]*(_[A-Z0-9]+)*$"),
        },
        ["type", "title", "status", "detail", "code"],
    ),
}

_INTEGER_HEADER: Schema = {"type": "integer", "minimum": 0}
HEADERS: dict[str, Any] = {
    "RateLimit-Limit": {"description": "requests allowed per clock minute", "schema": _INTEGER_HEADER},
    "RateLimit-Remaining": {"description": "requests left this minute", "schema": _INTEGER_HEADER},
    "RateLimit-Reset": {"description": "seconds to the end of this minute", "schema": _INTEGER_HEADER},
    "Retry-After": {"description": "seconds to wait before trying again", "schema": _INTEGER_HEADER},
    "Idempotency-Replayed": {
        "description": "`true` when this is the stored answer to an earlier request with the same key",
        "schema": string(enum=("true",)),
    },
}
_RATE_HEADERS = {name: {"$ref": f"#/components/headers/{name}"} for name in HEADERS if name.startswith("RateLimit")}


def _ok(description: str, schema: Schema | None, *, replayable: bool) -> dict[str, Any]:
    headers = dict(_RATE_HEADERS)
    if replayable:
        headers["Idempotency-Replayed"] = {"$ref": "#/components/headers/Idempotency-Replayed"}
    return answer(description, schema, headers=headers)


def _problem(description: str, *, retry_after: bool = False) -> dict[str, Any]:
    headers = dict(_RATE_HEADERS)
    if retry_after:
        headers["Retry-After"] = {"$ref": "#/components/headers/Retry-After"}
    return answer(description, ref("Problem"), content_type=PROBLEM_JSON, headers=headers)


_BAD_REQUEST = _problem("`VALIDATION_FAILED` (the detail names the field), or `WORKSPACE_REQUIRED` with an API key")
_UNAUTHORIZED = _problem("`UNAUTHORIZED`")
_NOT_FOUND = _problem("`NOT_FOUND`")
_CONFLICT = _problem("`IMMUTABLE_WHILE_LIVE` or `STREAM_ILLEGAL_TRANSITION`")
_KEY_REUSED = _problem("`IDEMPOTENCY_KEY_REUSED`: the same key with a different request")
_RATE_LIMITED = _problem("`RATE_LIMITED`", retry_after=True)

_STREAM_ID = path_parameter("id", "the stream's id (`stream_` + ULID)")
_IDEMPOTENCY_KEY = {
    "name": "Idempotency-Key",
    "in": "header",
    "required": False,
    "description": "A repeat with the same key within 24 h replays the first answer instead of running again",
    "schema": string(),
}


def _errors(*statuses: str) -> dict[str, Any]:
    every = {
        "400": _BAD_REQUEST,
        "401": _UNAUTHORIZED,
        "404": _NOT_FOUND,
        "409": _CONFLICT,
        "422": _KEY_REUSED,
        "429": _RATE_LIMITED,
    }
    return {status: every[status] for status in statuses}


def _verb(operation_id: str, summary: str, status: str, description: str) -> dict[str, Any]:
    return {
        "post": {
            "operationId": operation_id,
            "summary": summary,
            "parameters": [_STREAM_ID, _IDEMPOTENCY_KEY],
            "responses": {
                status: _ok(description, ref("Stream"), replayable=True),
                **_errors("400", "401", "404", "409", "422", "429"),
            },
        }
    }


PATHS: dict[str, Any] = {
    "/streams": {
        "post": {
            "operationId": "createStream",
            "summary": "Create a stream",
            "parameters": [_IDEMPOTENCY_KEY],
            "requestBody": json_body(ref("CreateStreamInput")),
            "responses": {
                "201": _ok("Created", ref("Stream"), replayable=True),
                **_errors("400", "401", "422", "429"),
            },
        },
        "get": {
            "operationId": "listStreams",
            "summary": "List streams in creation order",
            "parameters": [
                limit_parameter(default=20, maximum=100),
                query_parameter("cursor", string(), "`page.nextCursor` of the page before"),
            ],
            "responses": {
                "200": _ok("One page of streams", ref("StreamPage"), replayable=False),
                **_errors("400", "401", "429"),
            },
        },
    },
    "/streams/{id}": {
        "get": {
            "operationId": "getStream",
            "summary": "One stream",
            "parameters": [_STREAM_ID],
            "responses": {
                "200": _ok("The stream", ref("Stream"), replayable=False),
                **_errors("400", "401", "404", "429"),
            },
        },
        "patch": {
            "operationId": "updateStream",
            "summary": "Change a stream's settings (not while it is live)",
            "parameters": [_STREAM_ID, _IDEMPOTENCY_KEY],
            "requestBody": json_body(ref("UpdateStreamInput")),
            "responses": {
                "200": _ok("The stream", ref("Stream"), replayable=True),
                **_errors("400", "401", "404", "409", "422", "429"),
            },
        },
        "delete": {
            "operationId": "deleteStream",
            "summary": "Delete a stream for good",
            "parameters": [_STREAM_ID],
            "responses": {
                "204": _ok("Deleted", None, replayable=False),
                **_errors("400", "401", "404", "429"),
            },
        },
    },
    "/streams/{id}/start": _verb(
        "startStream", "Start: from draft, scheduled, stopped, failed or invalid", "202", "Accepted"
    ),
    "/streams/{id}/stop": _verb("stopStream", "Stop: from any live state", "202", "Accepted"),
    "/streams/{id}/schedule": {
        "post": {
            "operationId": "scheduleStream",
            "summary": "Schedule a stream",
            "parameters": [_STREAM_ID, _IDEMPOTENCY_KEY],
            "requestBody": json_body(ref("ScheduleInput")),
            "responses": {
                "200": _ok("The stream, scheduled", ref("Stream"), replayable=True),
                **_errors("400", "401", "404", "409", "422", "429"),
            },
        }
    },
}


def build(server_url: str) -> dict[str, Any]:
    return document(
        title="Streamloop API",
        description=(
            "24/7 playlist streams. Errors are application/problem+json with an UPPER_SNAKE `code`; "
            "600 requests a minute per credential."
        ),
        server_url=server_url,
        vendor_url=VENDOR_URL,
        paths=PATHS,
        schemas=SCHEMAS,
        security_schemes={
            "bearerAuth": {
                "type": "http",
                "scheme": "bearer",
                "description": "OAuth 2.1 access token (authorization-code flow with PKCE)",
            },
            "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
            "workspaceId": {
                "type": "apiKey",
                "in": "header",
                "name": "X-Workspace-Id",
                "description": "the workspace an API key acts in",
            },
        },
        # Either credential: a bearer token, or an API key together with its workspace.
        security=[{"bearerAuth": []}, {"apiKey": [], "workspaceId": []}],
        extra_components={"headers": HEADERS},
    )
