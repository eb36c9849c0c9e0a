"""Livepush's routes as the simulator serves them (livepush-streams.txt and vendors/README.md)."""

from __future__ import annotations

from typing import Any

from ..livepush.models import STREAM_CATEGORIES
from ..livepush.routes import CREATE_STREAM_FIELDS, PLAYLIST_FIELDS
from .schema import (
    DATE_TIME,
    Schema,
    answer,
    array,
    document,
    json_body,
    obj,
    path_parameter,
    ref,
    request_schema,
    string,
)

VENDOR_URL = "https://octopus.livepush.io"

_METADATA = obj({"name": string(), "category": string()})
_CONFIG = obj({"pullUrlMaxRetry": {"type": "integer"}, "recordingTier": string()})
_DETAIL_PROPERTIES: dict[str, Schema] = {
    "id": string(pattern="^st_"),
    "chatId": string(pattern="^mc_"),
    "embedId": string(pattern="^em_"),
    "createdAt": DATE_TIME,
    "metadata": _METADATA,
    "config": _CONFIG,
    "destinations": array(ref("Destination")),
}
_DETAIL_TAIL: dict[str, Schema] = {"unsafeContent": {"type": "boolean"}, "hasValidated": {"type": "boolean"}}
_DETAIL_REQUIRED = [*_DETAIL_PROPERTIES, "zone", *_DETAIL_TAIL]

SCHEMAS: dict[str, Schema] = {
    "Zone": obj(
        {
            "id": string(pattern="^zn_"),
            "name": string(),
            "category": string(),
            "host": string(),
            "isPublic": {"type": "boolean"},
            "isDefault": {"type": "boolean"},
        }
    ),
    "Destination": obj(
        {
            "id": string(pattern="^pb_"),
            "appName": string(),
            "label": string(),
            "rtmpBase": string(),
            "isPinned": {"type": "boolean"},
            "isDisabled": {"type": "boolean"},
            "updatedAt": DATE_TIME,
        },
        ["id", "appName", "label", "rtmpBase", "isPinned", "isDisabled", "updatedAt"],
    ),
    "Recording": obj(
        {"id": string(), "stream": string(), "streamKey": string(), "time": DATE_TIME, "updatedAt": DATE_TIME},
        ["id", "stream", "streamKey", "time", "updatedAt"],
    ),
    "StreamListItem": obj(
        {
            "id": string(pattern="^st_"),
            "metadata": _METADATA,
            "createdAt": DATE_TIME,
            "isDisabled": {"type": "boolean"},
            "config": _CONFIG,
            "destinations": array(ref("Destination")),
            "zone": ref("Zone"),
        },
        ["id", "metadata", "createdAt", "isDisabled", "config", "destinations", "zone"],
    ),
    "CreatedStream": obj(
        _DETAIL_PROPERTIES | {"zone": string(pattern="^zn_")} | _DETAIL_TAIL,
        _DETAIL_REQUIRED,
        description="The create answer: `zone` is the assigned zone's id",
    ),
    "Stream": obj(
        _DETAIL_PROPERTIES | {"zone": ref("Zone")} | _DETAIL_TAIL,
        _DETAIL_REQUIRED,
        description="Stream details: `zone` is the zone itself",
    ),
    "CreateStreamRequest": request_schema(CREATE_STREAM_FIELDS),
    "Deleted": obj({"success": {"type": "boolean"}}, ["success"]),
    "PlaylistRequest": request_schema(PLAYLIST_FIELDS),
    "Playlist": obj({"success": {"type": "boolean"}, "videos": array(string())}, ["success", "videos"]),
    "Error": obj({"message": string()}, ["message"]),
}

_UNAUTHORIZED = answer("Unauthorized", ref("Error"))
_NOT_FOUND = answer("Stream not found", ref("Error"))
_INVALID = answer("The body is invalid; the message names the field", ref("Error"))
_STREAM_ID = path_parameter("streamId", "the stream's id (`st_...`)")

PATHS: dict[str, Any] = {
    "/streams/mine": {
        "get": {
            "operationId": "listMyStreams",
            "summary": "Get user streams (every one: there is no paging)",
            "responses": {"200": answer("List of user streams", array(ref("StreamListItem"))), "401": _UNAUTHORIZED},
        }
    },
    "/streams/me/destinations": {
        "get": {
            "operationId": "listMyDestinations",
            "summary": "The account's streaming destinations",
            "responses": {"200": answer("Destinations", array(ref("Destination"))), "401": _UNAUTHORIZED},
        }
    },
    "/streams/me/recordings": {
        "get": {
            "operationId": "listMyRecordings",
            "summary": "Recordings made from the account's streams",
            "responses": {"200": answer("Recordings", array(ref("Recording"))), "401": _UNAUTHORIZED},
        }
    },
    "/streams": {
        "post": {
            "operationId": "createStream",
            "summary": f"Create a new stream ({' or '.join(STREAM_CATEGORIES)}), in its category's default zone",
            "requestBody": json_body(ref("CreateStreamRequest")),
            "responses": {
                "201": answer("Stream created successfully", ref("CreatedStream")),
                "400": _INVALID,
                "401": _UNAUTHORIZED,
            },
        }
    },
    "/streams/{streamId}": {
        "get": {
            "operationId": "getStream",
            "summary": "Get stream by ID",
            "parameters": [_STREAM_ID],
            "responses": {"200": answer("Stream details", ref("Stream")), "401": _UNAUTHORIZED, "404": _NOT_FOUND},
        },
        "delete": {
            "operationId": "deleteStream",
            "summary": "Delete live stream, with its recordings",
            "parameters": [_STREAM_ID],
            "responses": {
                "200": answer("Live stream deleted successfully", ref("Deleted")),
                "401": _UNAUTHORIZED,
                "404": _NOT_FOUND,
            },
        },
    },
    "/streams/{streamId}/config/scheduler/playlist": {
        "put": {
            "operationId": "setSchedulerPlaylist",
            "summary": "Set the videos the scheduler plays",
            "parameters": [_STREAM_ID],
            "requestBody": json_body(ref("PlaylistRequest")),
            "responses": {
                "200": answer("The playlist", ref("Playlist")),
                "400": _INVALID,
                "401": _UNAUTHORIZED,
                "404": _NOT_FOUND,
            },
        }
    },
}


def build(server_url: str) -> dict[str, Any]:
    return document(
        title="Livepush Developers API",
        description="Live streams, destinations and recordings. Lists are bare arrays; errors are `{message}`.",
        server_url=server_url,
        vendor_url=VENDOR_URL,
        paths=PATHS,
        schemas=SCHEMAS,
        security_schemes={"bearerAuth": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        security=[{"bearerAuth": []}],
    )
