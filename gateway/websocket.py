"""The limits of /graphql's websockets, the same as HTTP's: credentials checked and rate-checked in
`connection_init`, each operation counted against the caller's rate, sockets per caller and operations
per socket bounded. (The size of a message is bounded by the websocket itself: see the view.)"""

from __future__ import annotations

from typing import Any

from graphql import GraphQLError
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import BaseGraphQLTransportWSHandler
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    SubscribeMessage,
)

from gateway.auth import API_KEY_HEADER
from gateway.context import Context
from gateway.errors import GatewayError, RateLimited, Unauthenticated
from gateway.keys import AUTHENTICATOR, CALLER_SOCKETS, RATE_LIMIT, SETTINGS
from gateway.ratelimit import TooManySockets

#: the close code of a socket refused for going over a limit (4429, as graphql-transport-ws uses for
#: "too many": the HTTP status plus 4000)
TOO_MANY = 4429


class SocketRefused(Exception):
    """A websocket closed before it was acknowledged, with its close code and a reason that says why."""

    def __init__(self, close_code: int, reason: str) -> None:
        super().__init__(reason)
        self.close_code = close_code
        self.reason = reason


class TooManyOperations(GatewayError):
    code = "RATE_LIMITED"
    retryable = True


def connection_credentials(params: dict[str, Any]) -> tuple[str | None, str | None]:
    """The Authorization and API key a `connection_init` payload carries, also nested under "headers"."""
    nested = params.get("headers")
    if isinstance(nested, dict):
        params = {**params, **nested}
    lowered = {str(key).lower(): value for key, value in params.items()}
    authorization, api_key = lowered.get("authorization"), lowered.get(API_KEY_HEADER.lower())
    return (
        authorization if isinstance(authorization, str) else None,
        api_key if isinstance(api_key, str) else None,
    )


def admit_socket(context: Context) -> None:
    """On `connection_init`: who the socket's caller is (unless the upgrade request's headers said so), their
    rate, and a place among their sockets. Raises `ConnectionRejectionError` or `SocketRefused`."""
    app = context.request.app
    if context.principal is None:
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        try:
            context.principal = app[AUTHENTICATOR].authenticate(*connection_credentials(params))
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"message": exc.message, "code": exc.code}) from exc
        # Credentials that came here were not seen by the access middleware: this is the socket's request.
        try:
            app[RATE_LIMIT].check(context.principal)
        except RateLimited as exc:
            raise SocketRefused(TOO_MANY, exc.message) from exc
    try:
        app[CALLER_SOCKETS].open(context.principal)
    except TooManySockets as exc:
        raise SocketRefused(TOO_MANY, exc.message) from exc
    context.socket_open = True


def release_socket(context: Context) -> None:
    if context.socket_open and context.principal is not None:
        context.request.app[CALLER_SOCKETS].close(context.principal)
        context.socket_open = False


def operation_refusal(context: Context, running: int) -> GatewayError | None:
    """Why an operation sent on the socket may not run now: too many at once, or over the caller's rate."""
    limit = context.request.app[SETTINGS].limits.max_subscriptions_per_socket
    if running >= limit:
        return TooManyOperations(f"at most {limit} operations run at once on one socket; complete one first")
    if context.principal is not None:
        try:
            context.request.app[RATE_LIMIT].check(context.principal)
        except RateLimited as exc:
            return exc
    return None


class LimitedTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with the gateway's limits on connecting and on each operation."""

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        try:
            await super().handle_connection_init(message)
        except SocketRefused as refused:
            await self.websocket.close(code=refused.close_code, reason=refused.reason)

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        # Before acknowledgement and for a reused id, the protocol's own answer (closing the socket) stands.
        if self.connection_acknowledged and message.get("id") not in self.operations:
            refusal = operation_refusal(self.context, len(self.operations))
            if refusal is not None:
                error = GraphQLError(refusal.message, extensions=refusal.extensions())
                await self.send_message(ErrorMessage(id=message["id"], type="error", payload=[error.formatted]))
                return
        await super().handle_subscribe(message)

    async def shutdown(self) -> None:
        try:
            await super().shutdown()
        finally:
            release_socket(self.context)
