"""Loop Live's conventions on the wire: `{error, message}` errors and bearer-token auth."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ..middleware import VendorProfile
from ..state import sim_state
from ..wire import json_response

PREFIX = "/loop"
CALLER = web.RequestKey("loop_caller", str)

# Loop's `error` words where they are not simply the lower-cased common code.
_ERROR_WORDS = {"VALIDATION_FAILED": "validation_error"}


def render_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    word = _ERROR_WORDS.get(code, code.lower())
    return json_response({"error": word, "message": message}, status, headers=headers)


PROFILE = VendorProfile(name="loop", prefix=PREFIX, render_error=render_error)


def bearer_auth() -> Middleware:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = sim_state(request).config.token
        if request.headers.get("Authorization") != f"Bearer {token}":
            return render_error(401, "UNAUTHORIZED", "missing or invalid bearer token")
        # One token means one caller; registrations remember it under this name.
        request[CALLER] = "caller:sim"
        return await handler(request)

    return authenticate
