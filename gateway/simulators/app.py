"""The simulator application: all three vendors, each under its own prefix, plus `/_sim/`."""

from __future__ import annotations

from aiohttp import web

from .config import SimulatorConfig
from .control import PREFIX as CONTROL_PREFIX
from .control import build_control_app
from .livepush.app import build_livepush_app
from .livepush.http import PREFIX as LIVEPUSH_PREFIX
from .loop.app import build_loop_app
from .loop.http import PREFIX as LOOP_PREFIX
from .openapi import add_openapi_routes
from .state import SIM_STATE, SimState
from .streamloop.app import build_streamloop_app
from .streamloop.http import PREFIX as STREAMLOOP_PREFIX


def create_app(config: SimulatorConfig | None = None) -> web.Application:
    """A fresh simulator; every app has its own data, faults, counts and clock."""
    app = web.Application()
    app[SIM_STATE] = SimState.fresh(config or SimulatorConfig())
    app.add_subapp(LOOP_PREFIX, build_loop_app())
    app.add_subapp(STREAMLOOP_PREFIX, build_streamloop_app())
    app.add_subapp(LIVEPUSH_PREFIX, build_livepush_app())
    app.add_subapp(CONTROL_PREFIX, build_control_app())
    add_openapi_routes(app)
    app.on_shutdown.append(_release_held_requests)
    return app


async def _release_held_requests(app: web.Application) -> None:
    """Requests held by `hang` or latency would otherwise keep shutdown waiting."""
    app[SIM_STATE].faults.release_held()
