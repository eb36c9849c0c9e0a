"""The Livepush sub-application, mounted at `/livepush`."""

from __future__ import annotations

from aiohttp import web

from ..middleware import errors_middleware, faults_middleware, stats_middleware
from .http import PROFILE, bearer_auth
from .routes import routes


def build_livepush_app() -> web.Application:
    app = web.Application(
        middlewares=[
            stats_middleware(PROFILE),
            faults_middleware(PROFILE),
            bearer_auth(),
            errors_middleware(PROFILE),
        ]
    )
    app.router.add_routes(routes)
    return app
