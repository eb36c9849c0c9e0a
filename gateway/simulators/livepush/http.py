"""Livepush's conventions on the wire: `{"message": ...}` errors and a bearer JWT."""

from __future__ import annotations

from collections.abc import Mapping

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ..middleware import VendorProfile
from ..state import sim_state
from ..wire import json_response

PREFIX = "/livepush"


def render_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    # Livepush says only what went wrong; it has no error codes.
    return json_response({"message": message}, status, headers=headers)


PROFILE = VendorProfile(name="livepush", prefix=PREFIX, render_error=render_error)


def bearer_auth() -> Middleware:
    @web.middleware
    async def authenticate(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = sim_state(request).config.token
        if request.headers.get("Authorization") != f"Bearer {token}":
            return render_error(401, "UNAUTHORIZED", "Unauthorized")
        return await handler(request)

    return authenticate
