"""graphql-transport-ws as the gateway speaks it: the same limits as HTTP, a socket that lives no longer
than its caller's credentials, refusals that say why, and each operation run as an HTTP request would be.

- Credentials are checked and rate-checked in `connection_init`, each operation is counted against the
  caller's rate, sockets per caller and operations per socket are bounded. (The size of a message is
  bounded by the websocket itself: see the view.)
- A socket is closed with 4403 and the reason when its credentials are refused at `connection_init`, and
  when they expire (a bearer token's `exp`, plus the leeway): from then on no operation starts on it.
- Each operation gets a context of its own (its loader, its deferred errors, a request id of its own),
  as each HTTP request does; only the caller and the socket are shared.
- A document named by a persisted-query hash or a `documentId` is read and checked as over HTTP.
- A document that does not parse, or names no operation it has, is answered with an `error` message
  coded as over HTTP, not by closing the socket; every error is shaped by the schema's `ErrorCodes`.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from dataclasses import replace
from typing import Any

from graphql import GraphQLError
from strawberry.exceptions import ConnectionRejectionError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
    Operation,
    _OperationStreamClosed,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import (
    ConnectionInitMessage,
    ErrorMessage,
    SubscribeMessage,
)
from strawberry.types.unset import UnsetType
from strawberry.utils.aio import aclosing

from gateway.auth import API_KEY_HEADER
from gateway.context import Context
from gateway.errors import GatewayError, RateLimited, Unauthenticated
from gateway.keys import AUTHENTICATOR, CALLER_SOCKETS, RATE_LIMIT, SETTINGS
from gateway.observability import request_id_var
from gateway.persisted import DocumentRefused, DocumentRequest
from gateway.ratelimit import TooManySockets
from gateway.request_shape import shape_error

#: the close code of a socket refused for going over a limit (4429, as graphql-transport-ws uses for
#: "too many": the HTTP status plus 4000)
TOO_MANY = 4429
#: graphql-transport-ws: the socket's credentials were refused, or are no longer good
FORBIDDEN = 4403
#: a close frame's reason holds at most 123 bytes (RFC 6455, 5.5)
MAX_REASON_BYTES = 123


def close_reason(text: str, prefix: str = "Forbidden: ") -> str:
    """`Forbidden: <why>`, cut to what a close frame holds."""
    reason = f"{prefix}{text}".encode()
    if len(reason) > MAX_REASON_BYTES:
        reason = reason[: MAX_REASON_BYTES - 3].decode(errors="ignore").encode() + b"..."
    return reason.decode()


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


async def admit_socket(context: Context) -> None:
    """On `connection_init`: who the socket's caller is (unless the upgrade request's headers said so), their
    rate, and a place among their sockets. Raises `ConnectionRejectionError` or `SocketRefused`."""
    app = context.request.app
    if context.principal is None:
        params = context.connection_params if isinstance(context.connection_params, dict) else {}
        try:
            context.principal = await app[AUTHENTICATOR].authenticate_async(*connection_credentials(params))
        except Unauthenticated as exc:
            raise ConnectionRejectionError({"message": exc.message, "code": exc.code}) from exc
        # Credentials that came here were not seen by the access middleware: this is the socket's request.
        try:
            await app[RATE_LIMIT].admit(context.principal)
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


async def operation_refusal(context: Context, running: int) -> GatewayError | None:
    """Why an operation sent on the socket may not run now: too many at once, or over the caller's rate."""
    limit = context.request.app[SETTINGS].limits.max_subscriptions_per_socket
    if running >= limit:
        return TooManyOperations(f"at most {limit} operations run at once on one socket; complete one first")
    if context.principal is not None:
        try:
            await context.request.app[RATE_LIMIT].admit(context.principal)
        except RateLimited as exc:
            return exc
    return None


class GatewayTransportWSHandler(BaseGraphQLTransportWSHandler[Context, None]):
    """graphql-transport-ws with the gateway's limits, credentials that expire, and a context per operation."""

    context: Context

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._operation_numbers = itertools.count(1)
        self._expiry: asyncio.Task[None] | None = None

    async def handle_connection_init(self, message: ConnectionInitMessage) -> None:
        # As strawberry's own, but a refusal carries its reason, and the socket is then watched for expiry.
        if self.connection_timed_out:
            return
        if self.connection_init_timeout_task:
            self.connection_init_timeout_task.cancel()
        payload = message.get("payload", {})
        if not isinstance(payload, dict):
            await self.websocket.close(code=4400, reason="Invalid connection init payload")
            return
        if self.connection_init_received:
            await self.websocket.close(code=TOO_MANY, reason="Too many initialisation requests")
            return
        self.connection_init_received = True
        self.context.connection_params = payload
        try:
            ack_payload = await self.view.on_ws_connect(self.context)
        except ConnectionRejectionError as exc:
            await self.websocket.close(code=FORBIDDEN, reason=close_reason(str(exc.payload.get("message", ""))))
            return
        except SocketRefused as refused:
            await self.websocket.close(code=refused.close_code, reason=close_reason(refused.reason, prefix=""))
            return
        if await self._close_if_expired():
            return
        if isinstance(ack_payload, UnsetType) or ack_payload is None:
            await self.send_message({"type": "connection_ack"})
        else:
            await self.send_message({"type": "connection_ack", "payload": ack_payload})
        self.connection_acknowledged = True
        principal = self.context.principal
        if principal is not None and principal.valid_until is not None:
            self._expiry = asyncio.create_task(self._close_at(principal.valid_until))

    async def _close_at(self, valid_until: float) -> None:
        await asyncio.sleep(max(0.0, valid_until - time.time()))
        await self._close_if_expired()

    async def _close_if_expired(self) -> bool:
        principal = self.context.principal
        if principal is None or not principal.expired():
            return False
        await self.websocket.close(code=FORBIDDEN, reason=close_reason("the credentials have expired"))
        return True

    async def handle_subscribe(self, message: SubscribeMessage) -> None:
        if self.connection_acknowledged:
            # A socket whose credentials ran out starts nothing more, even before the timer closes it.
            if await self._close_if_expired():
                return
            # For a reused id, the protocol's own answer (closing the socket) stands.
            if message.get("id") not in self.operations:
                refusal = await operation_refusal(self.context, len(self.operations))
                if refusal is not None:
                    error = GraphQLError(refusal.message, extensions=refusal.extensions())
                    await self.send_message(ErrorMessage(id=message["id"], type="error", payload=[error.formatted]))
                    return
                payload = message.get("payload")
                malformed = shape_error(payload) if isinstance(payload, dict) else None
                if malformed is not None:
                    error = GraphQLError(malformed, extensions={"code": "BAD_REQUEST"})
                    await self.send_message(ErrorMessage(id=message["id"], type="error", payload=[error.formatted]))
                    return
                try:
                    message = await self._with_document_text(message)
                except DocumentRefused as refused:
                    error = GraphQLError(refused.message, extensions={"code": refused.code})
                    await self.send_message(ErrorMessage(id=message["id"], type="error", payload=[error.formatted]))
                    return
        await super().handle_subscribe(message)

    async def _with_document_text(self, message: SubscribeMessage) -> SubscribeMessage:
        """The message with the text of the document it names (a persisted-query hash, a `documentId`), read
        and checked as over HTTP: a hash that is not its text's, or names nothing known, is refused."""
        payload = message.get("payload")
        if not isinstance(payload, dict) or ("documentId" not in payload and "extensions" not in payload):
            return message
        request = DocumentRequest.from_params(payload)
        if request.document_id is None and request.apq_hash is None:
            return message
        principal = self.context.principal
        text = await self.context.services.documents.text_of(request, principal.role if principal else None)
        return SubscribeMessage(id=message["id"], type="subscribe", payload={**payload, "query": text})

    def operation_context(self) -> Context:
        """A context of the operation's own, for the socket's caller, as an HTTP request would have."""
        base = self.context
        request_id = f"{base.request_id}.{next(self._operation_numbers)}"
        return replace(base, request_id=request_id, loader=base.services.event_loader(), deferred_errors=[])

    async def run_operation(self, operation: Operation[Context, None]) -> None:
        # As strawberry's own, with a context per operation.
        context = self.operation_context()
        request_id_var.set(context.request_id)
        try:
            result_source = await self.schema.stream(
                operation.query,
                variable_values=operation.variables,
                context_value=context,
                root_value=self.root_value,
                operation_name=operation.operation_name,
            )
            async with aclosing(result_source):
                await self._send_result_stream(operation, result_source)
            await operation.send_operation_message({"id": operation.id, "type": "complete"})
        except _OperationStreamClosed:
            return
        except Exception as error:
            await self.handle_task_exception(error)
            with contextlib.suppress(Exception):
                await operation.send_operation_message({"id": operation.id, "type": "complete"})
            self.operations.pop(operation.id, None)
            raise

    async def _reject_incremental_delivery(self, operation: Operation[Context, None]) -> None:
        # graphql-transport-ws has no message for the parts of an answer; coded as over HTTP to a client
        # that reads no parts (406, NOT_ACCEPTABLE).
        message = "the operation defers parts of its answer, which a websocket cannot carry: send it over HTTP"
        await operation.send_initial_errors(
            [GraphQLError(message + " with Accept: multipart/mixed, or as SSE", extensions={"code": "NOT_ACCEPTABLE"})]
        )

    @staticmethod
    def _get_pre_execution_close_reason(error: GraphQLError) -> str | None:
        # A document that does not parse, or an operation name it does not have, is the operation's error
        # (coded as over HTTP), not a reason to close the socket and every other operation on it.
        return None

    async def shutdown(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        try:
            await super().shutdown()
        finally:
            release_socket(self.context)
