"""Who may reach /graphql, and how often: credentials are checked and each caller's rate is limited
before a request reaches the schema.

Only a real websocket handshake (RFC 6455: a GET with `Upgrade: websocket`, `Connection: upgrade`, version
13, a well-formed key, and a subprotocol the view speaks) may come without credentials, since a browser
cannot put headers on one: the websocket handler then checks the credentials of `connection_init`. Every
other request, whatever its headers say, is authenticated and rate-limited here.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web

from gateway.auth import API_KEY_HEADER, Authenticator
from gateway.errors import GatewayError, RateLimited, Unauthenticated
from gateway.keys import PRINCIPAL, RATE_LIMIT
from gateway.media import JSON, error_document, negotiate
from gateway.observability import Metrics

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
GRAPHQL_PATH = "/graphql"
#: the websocket subprotocols /graphql speaks
WEBSOCKET_PROTOCOLS = ("graphql-transport-ws",)
#: whether a request is a real websocket handshake, decided once per request
WEBSOCKET_HANDSHAKE = web.RequestKey("websocket_handshake", bool)


def error_response(request: web.Request, error: GatewayError, status: int) -> web.Response:
    """A GraphQL-shaped error document for a request refused before it reached the schema."""
    content_type = negotiate(request.headers.get(hdrs.ACCEPT)) or JSON
    response = web.Response(
        status=status, body=error_document(error.message, error.extensions()), content_type=content_type
    )
    if isinstance(error, Unauthenticated):
        response.headers[hdrs.WWW_AUTHENTICATE] = 'Bearer realm="live-gateway"'
    if isinstance(error, RateLimited):
        response.headers[hdrs.RETRY_AFTER] = str(int(error.retry_after or 1))
    return response


def is_websocket_handshake(request: web.Request) -> bool:
    """A real websocket handshake for a subprotocol the view speaks; decided once, so that the access
    middleware and the view can never disagree about it."""
    if request.method != hdrs.METH_GET:  # nothing to remember: no other method opens a websocket
        return False
    known = request.get(WEBSOCKET_HANDSHAKE)
    if known is None:
        known = request[WEBSOCKET_HANDSHAKE] = _is_websocket_handshake(request)
    return known


def _is_websocket_handshake(request: web.Request) -> bool:
    headers = request.headers
    # aiohttp's own check also takes other methods, drafts of the protocol and handshakes without a
    # subprotocol in common; none of those is a websocket this view serves.
    if request.method != hdrs.METH_GET or headers.get(hdrs.SEC_WEBSOCKET_VERSION, "").strip() != "13":
        return False
    if headers.get(hdrs.UPGRADE, "").lower().strip() != "websocket":
        return False
    ready = web.WebSocketResponse(protocols=WEBSOCKET_PROTOCOLS).can_prepare(request)
    return ready.ok and ready.protocol in WEBSOCKET_PROTOCOLS


def is_graphiql_page(request: web.Request) -> bool:
    """GraphiQL's own page holds no data; the queries it sends carry the caller's credentials."""
    return (
        request.method == hdrs.METH_GET
        and "query" not in request.query
        and "documentId" not in request.query
        and "extensions" not in request.query
        and "text/html" in request.headers.get(hdrs.ACCEPT, "")
    )


def access_middleware(
    authenticator: Authenticator, metrics: Metrics, guarded_paths: frozenset[str] = frozenset({GRAPHQL_PATH})
) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Checks the credentials and the rate of every request to `guarded_paths`."""

    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path not in guarded_paths or request.method == hdrs.METH_OPTIONS:
            return await handler(request)
        # Only /graphql serves GraphiQL's page and websockets: on the other guarded paths (the SDL, the
        # possible types) those headers excuse nothing.
        serves_page_and_sockets = request.path == GRAPHQL_PATH
        if serves_page_and_sockets and is_graphiql_page(request):
            return await handler(request)
        authorization, api_key = request.headers.get(hdrs.AUTHORIZATION), request.headers.get(API_KEY_HEADER)
        # A browser cannot put headers on a websocket: its credentials may come in `connection_init` instead,
        # where the websocket handler checks them.
        if serves_page_and_sockets and authorization is None and api_key is None and is_websocket_handshake(request):
            return await handler(request)
        try:
            principal = await authenticator.authenticate_async(authorization, api_key)
            await request.app[RATE_LIMIT].admit(principal)
        except Unauthenticated as exc:
            metrics.rejected.labels("unauthenticated").inc()
            return error_response(request, exc, 401)
        except RateLimited as exc:
            metrics.rejected.labels("rate_limited").inc()
            return error_response(request, exc, 429)
        request[PRINCIPAL] = principal
        return await handler(request)

    return access
