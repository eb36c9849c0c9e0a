"""Loop Live calls: `/v1/live/calls`."""

from __future__ import annotations

import uuid
from datetime import timedelta

from aiohttp import web

from ..errors import SimError
from ..state import SimState, sim_state
from ..validation import FieldSpec, check_object
from ..wire import json_response, read_json
from .models import Call

CREATE_CALL_FIELDS = (
    FieldSpec("host_user_id", "string", required=True, min_length=1),
    FieldSpec("title", "string", required=True, min_length=1),
    FieldSpec("scheduled_at", "date_time", nullable=True),
    FieldSpec("metadata", "object"),
)

routes = web.RouteTableDef()


def require_provider(state: SimState) -> None:
    """Calls are backed by a streaming provider; creating or ending one needs it configured and working."""
    mode = state.faults.current("loop").provider
    if mode == "not_configured":
        raise SimError(503, "PROVIDER_NOT_CONFIGURED", "the streaming provider is not configured")
    if mode == "failing":
        raise SimError(502, "PROVIDER_ERROR", "the streaming provider failed to answer")


@routes.post("/v1/live/calls")
async def create_call(request: web.Request) -> web.Response:
    state = sim_state(request)
    fields = check_object(await read_json(request), CREATE_CALL_FIELDS)
    require_provider(state)
    now = state.clock.now()
    call = Call(
        id=str(uuid.uuid4()),
        host_user_id=fields["host_user_id"],
        title=fields["title"],
        scheduled_at=fields.get("scheduled_at"),
        metadata=fields.get("metadata", {}),
        stream_call_id=uuid.uuid4().hex,
        created_at=now,
        updated_at=now,
    )
    state.loop.calls[call.id] = call
    return json_response(call.row(), 201)


@routes.get("/v1/live/calls/{id}")
async def get_call(request: web.Request) -> web.Response:
    state = sim_state(request)
    call = state.loop.call(request.match_info["id"], state.clock.now())
    provider_reachable = state.faults.current("loop").provider == "ok"
    return json_response(call.row_with_live(provider_reachable))


@routes.post("/v1/live/calls/{id}/end")
async def end_call(request: web.Request) -> web.Response:
    state = sim_state(request)
    now = state.clock.now()
    call = state.loop.call(request.match_info["id"], now)
    require_provider(state)
    state.loop.end_call(call, now, timedelta(seconds=state.config.recording_delay_seconds))
    call.settle(now)
    return json_response(call.row_with_live(provider_reachable=True))
