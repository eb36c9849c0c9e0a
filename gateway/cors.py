"""CORS for /graphql: which browser origins may call the API, answered before any credentials are checked.

It sits before the access middleware, so a preflight needs no credentials and a 401 or 429 still carries
the headers a browser needs to show its caller the error.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Collection

from aiohttp import hdrs, web
from aiohttp.typedefs import Middleware
from multidict import CIMultiDict
from strawberry.http.websocket_origin import normalize_allowed_origins, normalize_origin

from gateway.access import GRAPHQL_PATH
from gateway.media import JSON, error_document
from gateway.settings import CorsSettings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

ALLOW_METHODS = "GET, POST"
ALLOW_HEADERS = "Content-Type, Authorization, X-API-Key, X-Request-Id, Idempotency-Key"
#: response headers a page may read besides the CORS-safelisted ones
EXPOSE_HEADERS = "X-Request-Id, Retry-After, WWW-Authenticate"


def add_vary(headers: CIMultiDict[str], *names: str) -> None:
    """Adds `names` to Vary, keeping what is there: caches must key the response by those request headers."""
    vary = headers.get(hdrs.VARY)
    if not vary:
        if names:
            headers[hdrs.VARY] = ", ".join(names)
        return
    present = [token.strip() for token in vary.split(",") if token.strip()]
    if "*" in present:
        return
    known = {token.lower() for token in present}
    added = [name for name in names if name.lower() not in known]
    if added:
        headers[hdrs.VARY] = ", ".join([*present, *added])


class CorsPolicy:
    """The origins allowed by settings.cors; "*" admits any origin."""

    def __init__(self, settings: CorsSettings) -> None:
        self.configure(settings)

    def configure(self, settings: CorsSettings) -> None:
        """Takes these settings from now on (at start, and when they are reloaded)."""
        # Fails on a value that is not an origin, rather than never matching later.
        origins = normalize_allowed_origins(settings.allow_origins)
        self.enabled = bool(origins)
        self.any_origin = "*" in origins
        self.origins = origins - {"*"}
        self.credentials = settings.allow_credentials
        self.max_age = settings.max_age

    def allow_origin(self, origin: str) -> str | None:
        """The Access-Control-Allow-Origin answer to `origin`, or None when that origin may not call."""
        if self.any_origin and not self.credentials:
            return "*"
        normalized = normalize_origin(origin)
        # "null" (sandboxed frames, file: pages) is never echoed: any page can make itself that origin.
        if normalized is None:
            return None
        if self.any_origin or normalized in self.origins:
            # Browsers compare the answer with the Origin they sent, byte for byte.
            return origin
        return None

    def decorate(self, headers: CIMultiDict[str], allowed: str | None) -> None:
        """Marks a response (any status) to a request that came with an Origin."""
        add_vary(headers, "Origin")
        if allowed is not None:
            self._allow(headers, allowed)
            headers[hdrs.ACCESS_CONTROL_EXPOSE_HEADERS] = EXPOSE_HEADERS

    def _allow(self, headers: CIMultiDict[str], allowed: str) -> None:
        headers[hdrs.ACCESS_CONTROL_ALLOW_ORIGIN] = allowed
        if self.credentials:
            headers[hdrs.ACCESS_CONTROL_ALLOW_CREDENTIALS] = "true"

    def preflight(self, origin: str) -> web.Response:
        allowed = self.allow_origin(origin)
        if allowed is None:
            body = error_document(f"origin {origin} may not call this API", {"code": "FORBIDDEN"})
            response = web.Response(status=403, body=body, content_type=JSON)
            add_vary(response.headers, "Origin")
            return response
        # The lists are answered whatever was asked: the browser compares them with its request and refuses
        # anything else itself.
        response = web.Response(status=204)
        add_vary(response.headers, "Origin")
        self._allow(response.headers, allowed)
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_METHODS] = ALLOW_METHODS
        response.headers[hdrs.ACCESS_CONTROL_ALLOW_HEADERS] = ALLOW_HEADERS
        response.headers[hdrs.ACCESS_CONTROL_MAX_AGE] = str(self.max_age)
        return response


def is_preflight(request: web.Request) -> bool:
    return (
        request.method == hdrs.METH_OPTIONS
        and hdrs.ORIGIN in request.headers
        and hdrs.ACCESS_CONTROL_REQUEST_METHOD in request.headers
    )


#: the policy in force; replaced whole when the settings are reloaded
CORS_POLICY = web.AppKey("cors_policy", CorsPolicy)
#: the Origin of a request on a CORS path ("" when it came without one), for marking its response
_REQUEST_ORIGIN = web.RequestKey("cors_origin", str)


def install_cors(app: web.Application, settings: CorsSettings) -> None:
    """The policy for `cors_middleware`, which answers preflights, and the marking of responses to allowed
    origins; with no origins configured neither does anything.

    Responses are marked as their headers go out (on_response_prepare), so that a stream, whose headers
    leave before its handler returns, is marked like a document.
    """
    app[CORS_POLICY] = CorsPolicy(settings)
    app.on_response_prepare.append(_mark_response)


def cors_middleware(paths: Collection[str] = (GRAPHQL_PATH,)) -> Middleware:
    """Answers preflights, and notes the Origin of other requests for `_mark_response`; the policy is the
    application's (`install_cors`)."""

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        policy = request.app[CORS_POLICY]
        if not policy.enabled or request.path not in paths:
            return await handler(request)
        origin = request.headers.get(hdrs.ORIGIN)
        if origin is not None and is_preflight(request):
            return policy.preflight(origin)
        request[_REQUEST_ORIGIN] = origin or ""
        return await handler(request)

    return cors


async def _mark_response(request: web.Request, response: web.StreamResponse) -> None:
    origin = request.get(_REQUEST_ORIGIN)
    # CORS does not apply to a websocket.
    if origin is None or isinstance(response, web.WebSocketResponse):
        return
    policy = request.app[CORS_POLICY]
    policy.decorate(response.headers, policy.allow_origin(origin) if origin else None)
