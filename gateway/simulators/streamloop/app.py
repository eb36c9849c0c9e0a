"""The Streamloop sub-application, mounted at `/streamloop/v1`."""

from __future__ import annotations

from aiohttp import web

from ..middleware import errors_middleware, faults_middleware, stats_middleware
from .http import PROFILE, authenticate, idempotency, rate_limit
from .routes import routes


def build_streamloop_app() -> web.Application:
    app = web.Application(
        middlewares=[
            stats_middleware(PROFILE),
            rate_limit(),
            faults_middleware(PROFILE),
            authenticate(),
            idempotency(),
            errors_middleware(PROFILE),
        ]
    )
    app.router.add_routes(routes)
    return app
