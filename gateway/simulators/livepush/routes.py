"""Livepush streams: `/streams/mine`, `/streams`, `/streams/{streamId}` and the account's lists.

`/streams/mine` and `/streams/me/...` are registered before `/streams/{streamId}` so that they win.
"""

from __future__ import annotations

from aiohttp import web

from ..state import sim_state
from ..validation import FieldSpec, check_object
from ..wire import json_response, read_json
from .models import DEFAULT_ZONES, STREAM_CATEGORIES, LivepushStream, new_id

CREATE_STREAM_FIELDS = (
    FieldSpec("category", "string", required=True, enum=STREAM_CATEGORIES),
    FieldSpec("name", "string", required=True),
)
PLAYLIST_FIELDS = (FieldSpec("videos", "string_array", required=True),)

routes = web.RouteTableDef()


@routes.get("/streams/mine")
async def my_streams(request: web.Request) -> web.Response:
    streams = sim_state(request).livepush.streams.values()
    return json_response([stream.list_item() for stream in streams])


@routes.get("/streams/me/destinations")
async def my_destinations(request: web.Request) -> web.Response:
    return json_response([d.wire() for d in sim_state(request).livepush.destinations])


@routes.get("/streams/me/recordings")
async def my_recordings(request: web.Request) -> web.Response:
    return json_response([r.wire() for r in sim_state(request).livepush.recordings])


@routes.post("/streams")
async def create_stream(request: web.Request) -> web.Response:
    state = sim_state(request)
    fields = check_object(await read_json(request), CREATE_STREAM_FIELDS)
    category = fields["category"]
    stream = LivepushStream(
        id=new_id("st_", 13),
        chat_id=new_id("mc_", 12),
        embed_id=new_id("em_", 12),
        name=fields["name"],
        category=category,
        zone_id=DEFAULT_ZONES[category].id,
        created_at=state.clock.now(),
    )
    state.livepush.streams[stream.id] = stream
    return json_response(stream.created(), 201)


@routes.get("/streams/{streamId}")
async def get_stream(request: web.Request) -> web.Response:
    stream = sim_state(request).livepush.stream(request.match_info["streamId"])
    return json_response(stream.detail())


@routes.delete("/streams/{streamId}")
async def delete_stream(request: web.Request) -> web.Response:
    store = sim_state(request).livepush
    store.delete(store.stream(request.match_info["streamId"]))
    return json_response({"success": True})


@routes.put("/streams/{streamId}/config/scheduler/playlist")
async def set_playlist(request: web.Request) -> web.Response:
    stream = sim_state(request).livepush.stream(request.match_info["streamId"])
    fields = check_object(await read_json(request), PLAYLIST_FIELDS)
    stream.playlist = fields["videos"]
    return json_response({"success": True, "videos": stream.playlist})
