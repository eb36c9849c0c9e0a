"""The Loop Live sub-application, mounted at `/loop`."""

from __future__ import annotations

from aiohttp import web

from ..middleware import errors_middleware, faults_middleware, stats_middleware
from . import calls, sessions
from .http import PROFILE, bearer_auth


def build_loop_app() -> web.Application:
    app = web.Application(
        middlewares=[
            stats_middleware(PROFILE),
            faults_middleware(PROFILE),
            bearer_auth(),
            errors_middleware(PROFILE),
        ]
    )
    app.router.add_routes(calls.routes)
    app.router.add_routes(sessions.routes)
    return app
