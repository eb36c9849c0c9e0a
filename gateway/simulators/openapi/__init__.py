"""OpenAPI 3.1 documents of the simulated vendors, each served beside its vendor's routes.

`GET /loop/openapi.json`, `GET /streamloop/v1/openapi.json` and `GET /livepush/openapi.json` describe the
routes under that prefix (paths, parameters, bodies, answers and credentials), so that tools which build
clients or gateways from OpenAPI can stand in front of the simulators. The documents are no part of any
vendor's API: like `/_sim/`, they need no token, are never faulted and are never counted.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web

from ..livepush.http import PREFIX as LIVEPUSH_PREFIX
from ..loop.http import PREFIX as LOOP_PREFIX
from ..streamloop.http import PREFIX as STREAMLOOP_PREFIX
from ..wire import json_response
from . import livepush, loop, streamloop

DOCUMENT_PATH = "/openapi.json"

# The vendor, its prefix (its base URL on the simulator) and its document builder.
DOCUMENTS: dict[str, tuple[str, Callable[[str], dict[str, Any]]]] = {
    "loop": (LOOP_PREFIX, loop.build),
    "streamloop": (STREAMLOOP_PREFIX, streamloop.build),
    "livepush": (LIVEPUSH_PREFIX, livepush.build),
}


def build_document(vendor: str, base_url: str) -> dict[str, Any]:
    """The document of `vendor`, whose routes are served under `base_url`."""
    _, build = DOCUMENTS[vendor]
    return build(base_url.rstrip("/"))


def add_openapi_routes(app: web.Application) -> None:
    """Register each vendor's document on the root app: a path longer than a sub-app's prefix is matched
    before the sub-app, so the vendors' middlewares (counting, faults, credentials) never see it."""
    for vendor, (prefix, _) in DOCUMENTS.items():
        app.router.add_get(prefix + DOCUMENT_PATH, _serve(vendor, prefix), name=f"openapi-{vendor}")


def _serve(vendor: str, prefix: str) -> Callable[[web.Request], Any]:
    async def serve(request: web.Request) -> web.Response:
        return json_response(build_document(vendor, f"{request.scheme}://{request.host}{prefix}"))

    return serve


__all__ = ["DOCUMENTS", "DOCUMENT_PATH", "add_openapi_routes", "build_document"]
