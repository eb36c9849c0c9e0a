"""`/_sim/`: the control surface that tests, the demo and benchmarks use to steer the simulators.

No vendor has anything like it; it is never counted in the stats and never faulted.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from .errors import SimError
from .faults import VENDORS, InvalidFaults, VendorFaults, parse_vendor_faults
from .loop.models import SESSION_STATUSES
from .seed import SeedRequest, seed_everything
from .state import SimState, sim_state
from .streamloop.models import STATES
from .validation import InvalidBody
from .wire import BodyNotJson, format_ts, json_response, read_json

PREFIX = "/_sim"

routes = web.RouteTableDef()


def render_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    return json_response({"error": code.lower(), "message": message}, status, headers=headers)


@web.middleware
async def _control_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except SimError as exc:
        return render_error(exc.status, exc.code, exc.message)
    except (InvalidBody, InvalidFaults) as exc:
        return render_error(400, "BAD_REQUEST", str(exc))
    except BodyNotJson:
        return render_error(400, "BAD_REQUEST", "the body is not valid JSON")


async def _body(request: web.Request) -> dict[str, Any]:
    body = await read_json(request)
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidBody(None, "the body must be a JSON object")
    return body


@routes.get("/health")
async def health(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


@routes.get("/stats")
async def stats(request: web.Request) -> web.Response:
    state = sim_state(request)
    return json_response({"requests": state.stats.rows(), "recent": state.stats.recent()})


@routes.post("/reset")
async def reset(request: web.Request) -> web.Response:
    state = sim_state(request)
    stats_only = (await _body(request)).get("stats_only") is True
    if stats_only:
        state.stats.clear()
    else:
        state.reset()
    return json_response({"reset": "stats" if stats_only else "all"})


@routes.post("/stats/reset")
async def reset_stats(request: web.Request) -> web.Response:
    """Shorthand for `POST /_sim/reset {"stats_only": true}`."""
    sim_state(request).stats.clear()
    return json_response({"reset": "stats"})


@routes.get("/faults")
async def get_faults(request: web.Request) -> web.Response:
    return json_response(sim_state(request).faults.as_json())


@routes.post("/faults")
async def set_faults(request: web.Request) -> web.Response:
    state = sim_state(request)
    body = await _body(request)
    unknown = sorted(set(body) - set(VENDORS))
    if unknown:
        raise InvalidFaults(f"unknown vendor(s) {', '.join(unknown)}; expected {', '.join(VENDORS)}")
    # Check every vendor's knobs before changing any, so a bad body changes nothing.
    parsed: dict[str, VendorFaults] = {vendor: parse_vendor_faults(vendor, body[vendor]) for vendor in body}
    for vendor, faults in parsed.items():
        state.faults.set(vendor, faults)
    return json_response(state.faults.as_json())


@routes.post("/seed")
async def seed(request: web.Request) -> web.Response:
    state = sim_state(request)
    wanted = SeedRequest.from_body(await _body(request), state.clock.now())
    return json_response(seed_everything(state, wanted))


def _clock_json(state: SimState) -> dict[str, Any]:
    return {"now": format_ts(state.clock.now()), "frozen": state.clock.frozen}


@routes.get("/clock")
async def get_clock(request: web.Request) -> web.Response:
    return json_response(_clock_json(sim_state(request)))


@routes.post("/clock")
async def set_clock(request: web.Request) -> web.Response:
    state = sim_state(request)
    body = await _body(request)
    frozen = body.get("frozen")
    if frozen is not None and not isinstance(frozen, bool):
        raise InvalidBody("frozen", "must be a boolean")
    advance = body.get("advance_seconds", 0)
    if isinstance(advance, bool) or not isinstance(advance, int | float) or advance < 0:
        raise InvalidBody("advance_seconds", "must be a number of seconds, zero or more")
    if frozen is True:
        state.clock.freeze()
    elif frozen is False:
        state.clock.unfreeze()
    state.clock.advance(advance)
    return json_response(_clock_json(state))


def _loop_call_answer(state: SimState, call_id: str) -> web.Response:
    call = state.loop.call(call_id, state.clock.now())
    return json_response(call.row_with_live(provider_reachable=True))


@routes.post("/loop/calls/{id}/session-start")
async def loop_session_start(request: web.Request) -> web.Response:
    state = sim_state(request)
    now = state.clock.now()
    call = state.loop.call(request.match_info["id"], now)
    session_id = (await _body(request)).get("session_id")
    if session_id is not None and not isinstance(session_id, str):
        raise InvalidBody("session_id", "must be a string")
    state.loop.start_provider_session(call, now, session_id)
    return _loop_call_answer(state, call.id)


@routes.post("/loop/calls/{id}/session-end")
async def loop_session_end(request: web.Request) -> web.Response:
    state = sim_state(request)
    now = state.clock.now()
    call = state.loop.call(request.match_info["id"], now)
    if not call.is_live:
        raise SimError(409, "CONFLICT", f"call {call.id} has no running session")
    state.loop.end_call(call, now, timedelta(seconds=state.config.recording_delay_seconds))
    return _loop_call_answer(state, call.id)


@routes.post("/loop/calls/{id}/recording-ready")
async def loop_recording_ready(request: web.Request) -> web.Response:
    state = sim_state(request)
    now = state.clock.now()
    call = state.loop.call(request.match_info["id"], now)
    call.mark_recording_ready(now)
    return _loop_call_answer(state, call.id)


@routes.post("/loop/calls/{id}/provider-error")
async def loop_provider_error(request: web.Request) -> web.Response:
    state = sim_state(request)
    now = state.clock.now()
    call = state.loop.call(request.match_info["id"], now)
    state.loop.fail_call(call, now)
    return _loop_call_answer(state, call.id)


@routes.post("/loop/sessions/{id}/status")
async def loop_session_status(request: web.Request) -> web.Response:
    state = sim_state(request)
    session = state.loop.session(request.match_info["id"])
    status = (await _body(request)).get("status")
    if status not in SESSION_STATUSES:
        raise InvalidBody("status", f"must be one of {', '.join(SESSION_STATUSES)}")
    state.loop.set_session_status(session, status, state.clock.now())
    return json_response(session.wire(caller=""))


@routes.post("/streamloop/streams/{id}/state")
async def streamloop_state(request: web.Request) -> web.Response:
    state = sim_state(request)
    now = state.clock.now()
    stream = state.streamloop.get(request.match_info["id"], now)
    wanted = (await _body(request)).get("state")
    if wanted not in STATES:
        raise InvalidBody("state", f"must be one of {', '.join(STATES)}")
    stream.move_to(wanted, now)
    return json_response(stream.wire())


def build_control_app() -> web.Application:
    app = web.Application(middlewares=[_control_errors])
    app.router.add_routes(routes)
    return app
