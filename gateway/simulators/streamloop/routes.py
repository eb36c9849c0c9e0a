"""Streamloop streams: `/streams` and the lifecycle verbs."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from aiohttp import web

from ..state import sim_state
from ..validation import InvalidBody, check_object, query_limit
from ..wire import json_response, read_json
from .models import SCHEDULE_FIELDS, STREAM_INPUT_FIELDS

routes = web.RouteTableDef()


def _check_window(start_at: datetime | None, end_at: datetime | None) -> None:
    if start_at is not None and end_at is not None and end_at <= start_at:
        raise InvalidBody("scheduleEndAt", "must be after scheduleStartAt")


@routes.post("/streams")
async def create_stream(request: web.Request) -> web.Response:
    state = sim_state(request)
    settings = check_object(await read_json(request), STREAM_INPUT_FIELDS)
    _check_window(settings.get("scheduleStartAt"), settings.get("scheduleEndAt"))
    stream = state.streamloop.create(settings, state.clock.now())
    return json_response(stream.wire(), 201)


@routes.get("/streams")
async def list_streams(request: web.Request) -> web.Response:
    state = sim_state(request)
    limit = query_limit(request.query, default=20, maximum=100)
    page, next_cursor = state.streamloop.page(state.clock.now(), limit, request.query.get("cursor"))
    body: dict[str, Any] = {
        "data": [stream.wire() for stream in page],
        "page": {"hasMore": next_cursor is not None, "nextCursor": next_cursor},
    }
    return json_response(body)


@routes.get("/streams/{id}")
async def get_stream(request: web.Request) -> web.Response:
    state = sim_state(request)
    return json_response(state.streamloop.get(request.match_info["id"], state.clock.now()).wire())


@routes.patch("/streams/{id}")
async def update_stream(request: web.Request) -> web.Response:
    state = sim_state(request)
    now = state.clock.now()
    stream = state.streamloop.get(request.match_info["id"], now)
    changes = check_object(await read_json(request), STREAM_INPUT_FIELDS)
    merged = stream.settings | changes
    _check_window(merged["scheduleStartAt"], merged["scheduleEndAt"])
    state.streamloop.update(stream, changes, now)
    return json_response(stream.wire())


@routes.delete("/streams/{id}")
async def delete_stream(request: web.Request) -> web.Response:
    state = sim_state(request)
    stream = state.streamloop.get(request.match_info["id"], state.clock.now())
    state.streamloop.delete(stream)
    return web.Response(status=204)


@routes.post("/streams/{id}/start")
async def start_stream(request: web.Request) -> web.Response:
    state = sim_state(request)
    now = state.clock.now()
    stream = state.streamloop.get(request.match_info["id"], now)
    state.streamloop.start(stream, now)
    return json_response(stream.wire(), 202)


@routes.post("/streams/{id}/stop")
async def stop_stream(request: web.Request) -> web.Response:
    state = sim_state(request)
    now = state.clock.now()
    stream = state.streamloop.get(request.match_info["id"], now)
    state.streamloop.stop(stream, now)
    return json_response(stream.wire(), 202)


@routes.post("/streams/{id}/schedule")
async def schedule_stream(request: web.Request) -> web.Response:
    state = sim_state(request)
    now = state.clock.now()
    stream = state.streamloop.get(request.match_info["id"], now)
    window = check_object(await read_json(request), SCHEDULE_FIELDS)
    start_at, end_at = window["scheduleStartAt"], window.get("scheduleEndAt")
    _check_window(start_at, end_at)
    state.streamloop.schedule(stream, start_at, end_at, now)
    return json_response(stream.wire())
