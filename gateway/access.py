"""Who may reach /graphql, and how often: credentials are checked and each caller's rate is limited
before a request reaches the schema."""

from __future__ import annotations

import math
import time
from collections.abc import Awaitable, Callable

from aiohttp import hdrs, web
from limits import RateLimitItem, parse
from limits.storage import MemoryStorage
from limits.strategies import MovingWindowRateLimiter

from gateway.auth import API_KEY_HEADER, Authenticator, Principal
from gateway.errors import GatewayError, RateLimited, Unauthenticated
from gateway.keys import PRINCIPAL
from gateway.media import JSON, error_document, negotiate
from gateway.observability import Metrics
from gateway.settings import Settings

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
GRAPHQL_PATH = "/graphql"


class CallerRateLimit:
    """A moving window per caller, per replica: a caller spread over N replicas gets up to N times the rate."""

    def __init__(self, limit: str) -> None:
        self._item: RateLimitItem | None = parse(limit) if limit else None
        self._limiter = MovingWindowRateLimiter(MemoryStorage())

    def check(self, principal: Principal) -> None:
        if self._item is None:
            return
        if not self._limiter.hit(self._item, principal.name):
            stats = self._limiter.get_window_stats(self._item, principal.name)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited(f"more than {self._item} requests; try again in {retry_after} s", retry_after=retry_after)


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


def is_graphiql_page(request: web.Request) -> bool:
    """GraphiQL's own page holds no data; the queries it sends carry the caller's credentials."""
    return (
        request.method == hdrs.METH_GET
        and "query" not in request.query
        and "text/html" in request.headers.get(hdrs.ACCEPT, "")
    )


def access_middleware(
    settings: Settings, authenticator: Authenticator, metrics: Metrics
) -> Callable[..., Awaitable[web.StreamResponse]]:
    rate_limit = CallerRateLimit(settings.limits.rate_limit)

    @web.middleware
    async def access(request: web.Request, handler: Handler) -> web.StreamResponse:
        if request.path != GRAPHQL_PATH or request.method == hdrs.METH_OPTIONS or is_graphiql_page(request):
            return await handler(request)
        authorization, api_key = request.headers.get(hdrs.AUTHORIZATION), request.headers.get(API_KEY_HEADER)
        websocket = request.headers.get(hdrs.UPGRADE, "").lower() == "websocket"
        # A browser cannot put headers on a websocket: its credentials may come in `connection_init` instead.
        if not (websocket and authorization is None and api_key is None):
            try:
                principal = authenticator.authenticate(authorization, api_key)
                rate_limit.check(principal)
            except Unauthenticated as exc:
                metrics.rejected.labels("unauthenticated").inc()
                return error_response(request, exc, 401)
            except RateLimited as exc:
                metrics.rejected.labels("rate_limited").inc()
                return error_response(request, exc, 429)
            request[PRINCIPAL] = principal
        return await handler(request)

    return access
