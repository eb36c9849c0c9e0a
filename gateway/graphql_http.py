"""GraphQL over HTTP: the aiohttp view that serves /graphql (queries, mutations, GraphiQL, websockets, SSE).

It follows the GraphQL-over-HTTP specification: the response media type is negotiated by Accept
(application/graphql-response+json or the legacy application/json), a request that is not a well-formed
GraphQL-over-HTTP request is refused with a 4xx and a coded error, and nothing changes state over GET.
With `Accept: text/event-stream` the same request is answered as a stream of server-sent events, in the
graphql-sse protocol's distinct-connections mode: one `next` event per result, then `complete`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncGenerator, Awaitable, Callable, Mapping
from contextlib import aclosing
from functools import cached_property
from typing import Any, TypeGuard

import orjson
from aiohttp import ClientConnectionResetError, hdrs, web
from cross_web import AiohttpHTTPRequestAdapter, AsyncHTTPRequestAdapter, HTTPException
from graphql import GraphQLError
from multidict import MultiMapping
from strawberry.aiohttp.views import AiohttpWebSocketAdapter, GraphQLView
from strawberry.exceptions import MissingQueryError
from strawberry.http import GraphQLHTTPResponse, GraphQLRequestData, process_result
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.http.parse_content_type import parse_content_type
from strawberry.http.streaming import HTTPStreamTransport, SSETransport
from strawberry.schema._graphql_core import GraphQLIncrementalExecutionResults, InitialIncrementalExecutionResult
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.subscriptions import GRAPHQL_SSE_PROTOCOL
from strawberry.types import ExecutionResult, SubscriptionExecutionResult
from strawberry.types.graphql import OperationType
from strawberry.types.unset import UnsetType

from gateway.access import error_response, is_graphiql_page, is_websocket_handshake
from gateway.auth import API_KEY_HEADER, Principal
from gateway.context import Context
from gateway.cors import add_vary
from gateway.errors import Unauthenticated
from gateway.graphiql import graphiql_response
from gateway.http_caching import ANSWER_HAS_ERRORS, CACHE_MAX_AGE, CACHE_STATUS_HEADER
from gateway.http_caching import finish as finish_http_caching
from gateway.keys import CALLER_SOCKETS, PRINCIPAL, REQUEST_ID, SERVICES
from gateway.media import (
    EVENT_STREAM,
    GRAPHQL_RESPONSE,
    JSON,
    MULTIPART_MIXED,
    UTF8,
    accepts_multipart,
    error_document,
    may_deliver_incrementally,
    negotiate,
    prefers_event_stream,
)
from gateway.persisted import DOCUMENT_CHECKED, DocumentRefused, DocumentRequest
from gateway.ratelimit import TooManySockets
from gateway.request_shape import shape_error
from gateway.response_cache import CacheKey, Shape, Shared, document_shape
from gateway.schema import EMPTY_DOCUMENT, operation_type_error
from gateway.shutdown import GOING_AWAY, LONG_LIVED
from gateway.websocket import GatewayTransportWSHandler, admit_socket

log = logging.getLogger("gateway.errors")

#: the response media type this request negotiated
MEDIA_TYPE = web.RequestKey("graphql_media_type", str)
#: the request's parameters, once read (the response cache reads them before the view runs)
REQUEST_DATA = web.RequestKey("graphql_request_data", GraphQLRequestData)
#: the request's key in the response cache and its document's shape, for a query whose answer may be
#: kept or shared
CACHEABLE = web.RequestKey("graphql_cacheable", tuple[CacheKey, Shape])

#: what plain HTTP runs: subscriptions are served over websockets and SSE; mutations never over GET (a safe method)
HTTP_OPERATIONS: Mapping[str, frozenset[OperationType]] = {
    hdrs.METH_GET: frozenset({OperationType.QUERY}),
    hdrs.METH_POST: frozenset({OperationType.QUERY, OperationType.MUTATION}),
}
#: the Content-Types of a JSON body, as clients write them
PLAIN_JSON = frozenset({JSON, f"{JSON}; charset=utf-8", f"{JSON};charset=utf-8"})
STATUS_CODES = {
    400: "BAD_REQUEST",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
}


class RequestRefused(HTTPException):
    """A request this endpoint does not serve, answered with its status and a coded GraphQL-shaped error."""

    def __init__(self, status: int, message: str, *, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(status, message)
        self.headers = dict(headers or {})


def _is_request_error(result: ExecutionResult) -> bool:
    """True when the operation never ran: parsing, validation or variable coercion failed.

    Field errors always carry a path; a request error never does. A response to a request error has no
    `data` entry, as the GraphQL specification asks.
    """
    return result.data is None and bool(result.errors) and all(error.path is None for error in result.errors or ())


def _request_error(message: str, code: str) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": code})])


class TextWebSocketAdapter(AiohttpWebSocketAdapter):
    """graphql-transport-ws speaks in text frames; the view's JSON is bytes (orjson), so decode it here."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        try:
            await self.ws.send_str(orjson.dumps(message).decode())
        except (RuntimeError, ClientConnectionResetError) as exc:
            raise WebSocketDisconnected from exc


#: where the schema's SDL is served (and, to GraphiQL, the introspection result built from it)
SCHEMA_PATH = "/schema.graphql"


async def going_away(pumping: asyncio.Future[None]) -> None:
    """End a stream's pump; its handler finishes the response."""
    pumping.cancel()


#: seconds between looks at whether the client of an event stream is still connected
CLIENT_CHECK_INTERVAL = 1.0


def _client_gone(request: web.Request) -> bool:
    transport = request.transport
    return transport is None or transport.is_closing()


async def _end_when_client_leaves(request: web.Request, pumping: asyncio.Future[None]) -> None:
    """A quiet stream learns that its client left only when it next writes (an event or the heartbeat):
    looking at the connection every second ends the subscription, and frees the caller's connection, soon
    after a client unsubscribes."""
    while not _client_gone(request):  # noqa: ASYNC110 (aiohttp tells a handler of no disconnect)
        await asyncio.sleep(CLIENT_CHECK_INTERVAL)
    pumping.cancel()


class GatewayView(GraphQLView[Context, None]):
    websocket_adapter_class = TextWebSocketAdapter  # type: ignore[assignment]
    graphql_transport_ws_handler_class = GatewayTransportWSHandler

    def __init__(
        self,
        *args: Any,
        sse_heartbeat_interval: float = 15.0,
        graphiql_page: str = "",
        max_message_bytes: int = 1 << 20,
        **kwargs: Any,
    ) -> None:
        super().__init__(*args, **kwargs)
        self.max_message_bytes = max_message_bytes
        self.sse_heartbeat_interval = sse_heartbeat_interval
        #: the GraphiQL page this gateway serves (Strawberry's own loads its files from a CDN)
        self.graphiql_page = graphiql_page

    async def render_graphql_ide(self, request: web.Request) -> web.Response:
        return graphiql_response(self.graphiql_page)

    @cached_property
    def _stream_transport_map(self) -> dict[str, HTTPStreamTransport]:
        # Strawberry builds its transports with their default heartbeat; an SSE comment every so often is
        # what keeps a proxy from closing a quiet stream and what finds a client that went away.
        if GRAPHQL_SSE_PROTOCOL not in self.protocols:
            return {}
        return {SSETransport.protocol: SSETransport(heartbeat_interval=self.sse_heartbeat_interval)}

    @property
    def serves_sse(self) -> bool:
        return GRAPHQL_SSE_PROTOCOL in self.protocols

    def is_websocket_request(self, request: web.Request) -> TypeGuard[web.Request]:
        # The access middleware's decision: only a real handshake may come without credentials.
        return is_websocket_handshake(request)

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        if self.is_websocket_request(request):
            try:
                return await self.run(request)
            finally:
                request.app[LONG_LIVED].unregister(request)
        accept = request.headers.get(hdrs.ACCEPT)
        media_type = EVENT_STREAM if self.serves_sse and prefers_event_stream(accept) else negotiate(accept)
        # A request refused before it runs is answered with a document, a stream's too: its status says why.
        document_type = JSON if media_type in (None, EVENT_STREAM) else media_type
        response: web.StreamResponse
        if request.method not in HTTP_OPERATIONS:
            message = f"{request.method} is not served here: use GET or POST"
            refused = RequestRefused(405, message, headers={hdrs.ALLOW: "GET, POST"})
            response = self._refusal(refused, document_type)
        elif self.graphql_ide and is_graphiql_page(request):
            response = await self.render_graphql_ide(request)
        elif request.get(PRINCIPAL) is None and not is_graphiql_page(request):
            # Past the access middleware without credentials come only a websocket (they come in its
            # connection_init) and GraphiQL's page (which runs nothing); anything else is refused here too.
            unauthenticated = Unauthenticated(
                f"credentials required: a bearer token, or an API key in {API_KEY_HEADER}"
            )
            response = error_response(request, unauthenticated, 401)
        elif media_type is None:
            message = f"responses are {GRAPHQL_RESPONSE}, {JSON} or {EVENT_STREAM}, and the Accept header admits none"
            response = self._refusal(RequestRefused(406, message), JSON)
        else:
            request[MEDIA_TYPE] = media_type
            try:
                response = await self._answer_again(request) or await self.run(request)
            except HTTPException as exc:
                response = self._refusal(exc, document_type)
            except DocumentRefused as exc:
                response = web.Response(
                    status=exc.status,
                    body=error_document(exc.message, {"code": exc.code}),
                    content_type=document_type,
                    charset="utf-8",
                )
            except (web.HTTPException, ClientConnectionResetError, ConnectionResetError):
                raise
            except Exception as exc:
                # What fails outside the schema (whose own masking covers resolvers) is masked the same way:
                # coded INTERNAL with the request id, logged with its traceback, never its message sent.
                request_id = request[REQUEST_ID]
                log.error("unexpected error (request %s)", request_id, exc_info=exc)
                response = web.Response(
                    status=500,
                    body=error_document(
                        f"Internal error (request id {request_id})", {"code": "INTERNAL", "requestId": request_id}
                    ),
                    content_type=document_type,
                    charset="utf-8",
                )
        if not response.prepared:  # a stream's headers are gone, with Vary among them
            compress_min_bytes = request.app[SERVICES].settings.compress_min_bytes
            response = finish_http_caching(request, response, compress_min_bytes, vary=("Accept",))
        return response

    async def _answer_again(self, request: web.Request) -> web.Response | None:
        """The answer to a query without executing it: from the response cache, or from an identical request
        executing now; None when it must execute. Credentials, the rate and a trusted document were checked
        as for any request (the middlewares, `parse_http_body`); the role is part of the key, and the limits
        passed for the same document and variables under the same settings (a reload empties the cache)."""
        responses = request.app[SERVICES].responses
        settings = responses.settings
        if request[MEDIA_TYPE] == EVENT_STREAM or not (settings.enabled or settings.share_in_flight):
            return None
        data = request[REQUEST_DATA] = await self.parse_http_body(self.request_adapter_class(request))
        principal = request[PRINCIPAL]
        if not data.query:
            return None
        shape = document_shape(data.query, data.operation_name)
        if not shape.cacheable:
            return None
        key = responses.key(data.query, data.variables, data.operation_name, principal.role.value)
        if key is None:
            return None
        request[CACHEABLE] = (key, shape)
        metrics = request.app[SERVICES].metrics
        hit = responses.get(key) if settings.enabled else None
        if hit is not None:
            # Given again as it is: nothing runs, nothing is asked of MongoDB or a vendor.
            metrics.response_cache("hit")
            return self._answer(request, hit.body, "HIT", hit.max_age)
        shared = await responses.share(key) if settings.share_in_flight else None
        if shared is not None:
            metrics.response_cache("shared")
            return self._answer(request, shared.body, "SHARED", shared.max_age)
        return None

    @staticmethod
    def _answer(request: web.Request, body: bytes, cache_status: str, max_age: float | None) -> web.Response:
        response = web.Response(body=body, content_type=request[MEDIA_TYPE], charset="utf-8")
        response.headers[CACHE_STATUS_HEADER] = cache_status
        if max_age is not None:
            request[CACHE_MAX_AGE] = max_age
        request[ANSWER_HAS_ERRORS] = False
        return response

    def _refusal(self, exc: HTTPException, media_type: str) -> web.Response:
        code = STATUS_CODES.get(exc.status_code, "BAD_REQUEST")
        headers = exc.headers if isinstance(exc, RequestRefused) else {}
        return web.Response(
            status=exc.status_code,
            body=error_document(exc.reason, {"code": code}),
            content_type=media_type,
            charset="utf-8",
            headers=headers,
        )

    def should_render_graphql_ide(self, request: Any) -> bool:
        # Decided in __call__, by the same rule the access middleware uses to let the page through.
        return False

    async def parse_http_body(self, request: AsyncHTTPRequestAdapter) -> GraphQLRequestData:
        assert isinstance(request, AiohttpHTTPRequestAdapter)
        known = request.request.get(REQUEST_DATA)
        if known is not None:
            return known
        if request.method == hdrs.METH_GET:
            params = self._url_params(request.request.query)
        else:
            params = await self._body_params(request)
        data = self._request_data(params)
        if request.request.get(MEDIA_TYPE) == EVENT_STREAM:
            data.protocol = "sse"
        # The document may be named (a persisted-query hash, a documentId) rather than sent; in trusted mode
        # it must be a trusted one. Checked here, so that the view refuses with the right status.
        principal = request.request.get(PRINCIPAL)
        documents = request.request.app[SERVICES].documents
        data.query = await documents.text_of(DocumentRequest.from_params(params), principal.role if principal else None)
        request.request[DOCUMENT_CHECKED] = True
        return data

    def _url_params(self, query: MultiMapping[str]) -> dict[str, object]:
        params: dict[str, object] = {}
        for name in ("query", "operationName", "variables", "extensions", "documentId"):
            values = query.getall(name, [])
            if len(values) > 1:
                raise RequestRefused(400, f"`{name}` is given more than once")
            if not values:
                continue
            # variables and extensions travel as JSON text; empty means absent, as for operationName.
            if name in ("variables", "extensions") and values[0]:
                params[name] = self._json(values[0], f"`{name}`")
            elif name == "query" or values[0]:
                params[name] = values[0]
        return params

    async def _body_params(self, request: AiohttpHTTPRequestAdapter) -> dict[str, object]:
        content_type = request.request.headers.get(hdrs.CONTENT_TYPE)
        if not content_type:
            raise RequestRefused(415, f"a POST needs a Content-Type: send the request as {JSON}")
        if content_type.lower() not in PLAIN_JSON:  # what nearly every client sends needs no parsing
            media_type, params = parse_content_type(content_type)
            if media_type.lower() != JSON:
                raise RequestRefused(415, f"a POST body must be {JSON}, not {media_type}")
            if params.get("charset", "utf-8").lower() not in UTF8:
                raise RequestRefused(415, f"a POST body must be UTF-8, not {params['charset']}")
        try:
            body = await request.get_body()
        except web.HTTPRequestEntityTooLarge as exc:
            raise RequestRefused(413, f"the body is larger than {request.request.client_max_size} bytes") from exc
        if not body.strip():
            raise RequestRefused(400, "the body is empty: send a JSON object with a `query`")
        data = self._json(body, "the body")
        if isinstance(data, list):
            raise RequestRefused(400, "the body must be a JSON object: batched operations are not supported")
        if not isinstance(data, dict):
            raise RequestRefused(400, "the body must be a JSON object")
        return data

    def _json(self, text: str | bytes, what: str) -> object:
        try:
            return self.decode_json(text)
        except orjson.JSONDecodeError as exc:
            raise RequestRefused(400, f"{what} is not valid JSON: {exc}") from exc

    def _request_data(self, params: Mapping[str, object]) -> GraphQLRequestData:
        error = shape_error(params)
        if error is not None:
            raise RequestRefused(400, error)
        query, operation_name = params.get("query"), params.get("operationName")
        variables, extensions = params.get("variables"), params.get("extensions")
        assert isinstance(query, str | None) and isinstance(operation_name, str | None)
        assert isinstance(variables, dict | None) and isinstance(extensions, dict | None)
        return GraphQLRequestData(
            query=query or "",
            variables=variables,
            operation_name=operation_name or None,
            extensions=extensions,
        )

    async def execute_operation(
        self,
        request: web.Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData | list[GraphQLRequestData],
        context: Context,
        root_value: None,
        sub_response: web.Response,
    ) -> ExecutionResult | list[ExecutionResult] | SubscriptionExecutionResult:
        if (
            isinstance(request_data, GraphQLRequestData)
            and request_data.protocol == "http"
            and may_deliver_incrementally(request_data.query)
        ):
            return await self._execute_incrementally(request, request_adapter, request_data, context)
        return await super().execute_operation(
            request, request_adapter, request_data, context, root_value, sub_response
        )

    async def _execute_incrementally(
        self,
        request: web.Request,
        request_adapter: AsyncHTTPRequestAdapter,
        request_data: GraphQLRequestData,
        context: Context,
    ) -> Any:
        """@defer and @stream over multipart/mixed: the first part as soon as it is known, then each deferred
        part as it completes. Run as a stream so that every part passes the error shaping on its way out;
        an operation that defers nothing is answered as a plain document."""
        frames = await self.schema.stream(
            request_data.query,
            variable_values=request_data.variables,
            context_value=context,
            operation_name=request_data.operation_name,
            operation_extensions=request_data.extensions,
            allowed_operation_types=HTTP_OPERATIONS[request_adapter.method],
        )
        first = await anext(frames)
        if isinstance(first, InitialIncrementalExecutionResult):
            if not accepts_multipart(request.headers.get(hdrs.ACCEPT)):
                await frames.aclose()
                message = f"the operation defers parts of its answer: send Accept: {MULTIPART_MIXED} to receive them"
                raise RequestRefused(406, message)
            return GraphQLIncrementalExecutionResults(initial_result=first, subsequent_results=frames)  # type: ignore[arg-type]
        # Nothing follows a whole answer; running the stream to its end ends the operation as usual (its
        # metrics, its span), where closing it early would cut that short.
        async for _ in frames:
            pass
        return first

    async def execute_single(
        self,
        request: web.Request,
        request_adapter: AsyncHTTPRequestAdapter,
        sub_response: web.Response,
        context: Context,
        root_value: None,
        request_data: GraphQLRequestData,
    ) -> ExecutionResult:
        responses = context.services.responses
        cacheable = request.get(CACHEABLE)
        execution = self.schema.execute(
            request_data.query,
            root_value=root_value,
            variable_values=request_data.variables,
            context_value=context,
            operation_name=request_data.operation_name,
            allowed_operation_types=HTTP_OPERATIONS[request_adapter.method],
            operation_extensions=request_data.extensions,
        )
        kept: float | None = None
        try:
            if cacheable is None:
                result = await execution
            else:
                result, kept = await self._execute_shared(execution, context, *cacheable)
        except InvalidOperationTypeError as exc:
            if exc.operation_type is OperationType.MUTATION:
                raise RequestRefused(405, "mutations are sent with POST", headers={hdrs.ALLOW: "POST"}) from exc
            return _request_error(
                "subscriptions are served over a websocket at this URL (graphql-transport-ws)", "BAD_REQUEST"
            )
        except CannotGetOperationTypeError as exc:
            return _request_error(*operation_type_error(exc))
        except MissingQueryError:
            return _request_error(EMPTY_DOCUMENT, "GRAPHQL_PARSE_FAILED")
        if isinstance(result, ExecutionResult):
            request[ANSWER_HAS_ERRORS] = bool(result.errors) or result.data is None
            if kept is not None:
                request[CACHE_MAX_AGE] = kept
            # Every query answered by executing was looked for in the cache first (but over SSE).
            if responses.settings.enabled and request_data.query and request.get(MEDIA_TYPE) != EVENT_STREAM:
                sub_response.headers[CACHE_STATUS_HEADER] = "MISS"
                context.services.metrics.response_cache("stored" if kept is not None else "not_kept")
        return result

    async def _execute_shared(
        self, execution: Awaitable[ExecutionResult], context: Context, key: CacheKey, shape: Shape
    ) -> tuple[ExecutionResult, float | None]:
        """Executes a query whose answer may be kept and shared: the identical requests that come meanwhile
        wait for its answer (unless one is executing already, which this request did not wait for). The
        execution runs on when this request's client goes away, for the others."""
        responses = context.services.responses
        flight = responses.begin(key) if responses.settings.share_in_flight else None
        generation = responses.generation

        async def execute() -> tuple[ExecutionResult, float | None]:
            shared: Shared | None = None
            try:
                result = await execution
                kept = None
                if isinstance(result, ExecutionResult) and not result.errors and result.data is not None:
                    kept = responses.put(key, result.data, context.reads, shape, time.time(), generation)
                    # Nor is an answer that read a stale copy shared: the read may have failed for this
                    # caller alone (its budget of vendor calls spent), and the others' may not.
                    if flight is not None and flight.waiters and not context.reads.uncacheable:
                        shared = Shared(self.encode_json({"data": result.data}), kept)
                return result, kept
            finally:
                if flight is not None:
                    responses.end(key, flight, shared)

        if flight is None:
            return await execute()
        task = asyncio.ensure_future(execute())
        # When no one is left to read it (this request's client went away), its failure is still looked at.
        task.add_done_callback(lambda done: done.cancelled() or done.exception())
        return await asyncio.shield(task)

    async def process_result(self, request: web.Request, result: ExecutionResult) -> GraphQLHTTPResponse:
        response = process_result(result)
        if _is_request_error(result):
            del response["data"]
        return response

    async def _process_stream_result(
        self, request: web.Request, value: Any, all_pending: list[Any]
    ) -> tuple[GraphQLHTTPResponse, list[Any]]:
        response, pending = await super()._process_stream_result(request, value, all_pending)
        # Strawberry writes a part's absent extensions as null; the response format has a map or nothing.
        if response.get("extensions", {}) is None:
            del response["extensions"]
        return response, pending

    async def get_sub_response(self, request: web.Request) -> web.Response:
        return web.Response(content_type=request.get(MEDIA_TYPE, JSON), charset="utf-8")

    def create_response(
        self, response_data: GraphQLHTTPResponse | list[GraphQLHTTPResponse], sub_response: web.Response
    ) -> web.Response:
        sub_response.body = self.encode_json(response_data)
        # With application/json every well-formed request is a 200, since a proxy's error page could pass for
        # the gateway's; graphql-response+json is trusted to mean it, so an operation that never ran is a 4xx.
        if (
            sub_response.content_type == GRAPHQL_RESPONSE
            and isinstance(response_data, dict)
            and "data" not in response_data
        ):
            sub_response.set_status(400)
        return sub_response

    async def create_streaming_response(
        self,
        request: web.Request,
        stream: Callable[[], AsyncGenerator[str, None]],
        sub_response: web.Response,
        headers: Mapping[str, str],
    ) -> web.StreamResponse:
        # An event stream stays open as long as its subscription: it holds one of its caller's connections
        # (as a websocket does), ends when the caller's credentials do, and when the server stops it is
        # ended (the graphql-sse client reconnects elsewhere) rather than cut when the shutdown wait runs out.
        long_lived = headers.get("Content-Type") == EVENT_STREAM
        principal = request.get(PRINCIPAL) if long_lived else None
        if principal is not None:
            try:
                request.app[CALLER_SOCKETS].open(principal)
            except TooManySockets as exc:
                return error_response(request, exc, 429)
        try:
            return await self._stream_response(request, stream, sub_response, headers, long_lived, principal)
        finally:
            if principal is not None:
                request.app[CALLER_SOCKETS].close(principal)

    async def _stream_response(
        self,
        request: web.Request,
        stream: Callable[[], AsyncGenerator[str, None]],
        sub_response: web.Response,
        headers: Mapping[str, str],
        long_lived: bool,
        principal: Principal | None,
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=sub_response.status, headers={**sub_response.headers, **headers})
        # Sent with the first byte, so set here rather than after the handler returns, as for a document.
        add_vary(response.headers, "Accept")
        await response.prepare(request)
        valid_until = principal.valid_until if principal is not None else None

        async def pump() -> None:
            async with aclosing(stream()) as chunks:
                while True:
                    deadline = asyncio.timeout(None if valid_until is None else max(0.0, valid_until - time.time()))
                    try:
                        async with deadline:
                            chunk = await anext(chunks)
                    except StopAsyncIteration:
                        return
                    except TimeoutError:
                        if not deadline.expired():
                            raise
                        await response.write(self._credentials_expired().encode())
                        return
                    await response.write(chunk.encode())

        pumping = asyncio.ensure_future(pump())
        watching: asyncio.Future[None] | None = None
        if long_lived:
            request.app[LONG_LIVED].register(request, lambda: going_away(pumping))
            watching = asyncio.ensure_future(_end_when_client_leaves(request, pumping))
        try:
            await pumping
            await response.write_eof()
        except asyncio.CancelledError:
            pumping.cancel()
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise
            if _client_gone(request):
                return response
            await response.write_eof()  # ended by the server going away
        except (ClientConnectionResetError, ConnectionResetError):
            # The client went away (found by the next event or heartbeat): leaving the loop closed the stream,
            # and with it the subscription.
            pass
        finally:
            if watching is not None:
                watching.cancel()
            if long_lived:
                request.app[LONG_LIVED].unregister(request)
        return response

    def _credentials_expired(self) -> str:
        """The end of an event stream whose caller's credentials ran out: the reason, coded, then complete."""
        transport = self._stream_transport_map[SSETransport.protocol]
        expired = Unauthenticated("the credentials have expired")
        error = {"message": expired.message, "extensions": expired.extensions()}
        return transport.encode_next({"errors": [error]}, self.encode_json_string) + transport.encode_complete()

    def encode_json(self, data: object) -> bytes:
        return orjson.dumps(data)

    def decode_json(self, data: str | bytes) -> object:
        return orjson.loads(data)

    async def get_context(self, request: web.Request, response: Any) -> Context:
        return Context.build(request, response, request.app[SERVICES], request[REQUEST_ID], request.get(PRINCIPAL))

    async def on_ws_connect(self, context: Context) -> UnsetType | dict[str, object] | None:
        await admit_socket(context)
        return None

    async def create_websocket_response(self, request: web.Request, subprotocol: str | None) -> web.WebSocketResponse:
        # A message larger than a request body may be closes the socket with 1009 (message too big).
        ws = web.WebSocketResponse(protocols=[subprotocol] if subprotocol else [], max_msg_size=self.max_message_bytes)
        await ws.prepare(request)
        # Closed with 1001 when the server stops, rather than cut when the shutdown wait runs out.
        request.app[LONG_LIVED].register(request, lambda: ws.close(code=GOING_AWAY, message=b"server shutting down"))
        return ws


#: the application's GraphQL view, for what changes it while it serves (settings reloaded)
GRAPHQL_VIEW = web.AppKey("graphql_view", GatewayView)
