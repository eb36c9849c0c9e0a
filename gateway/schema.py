"""The strawberry.Schema: types, root fields and the extension that gives every error its code."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from functools import partial
from typing import Any

import strawberry
from graphql import GraphQLError
from strawberry.exceptions import MissingQueryError
from strawberry.extensions import SchemaExtension
from strawberry.schema.config import StrawberryConfig
from strawberry.schema.exceptions import CannotGetOperationTypeError, InvalidOperationTypeError
from strawberry.schema.schema import StreamResult
from strawberry.types import ExecutionContext, ExecutionResult
from strawberry.types.execution import PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.utils.aio import aclosing

from gateway.errors import GatewayError, StoreUnavailable
from gateway.executor import Executor
from gateway.extension_chain import ExtensionChain
from gateway.limits import QUERY_TOO_COMPLEX, is_limit_error, limit_extensions
from gateway.observability import OperationMetrics, tracing_extensions
from gateway.persisted import TrustedDocumentsOnly
from gateway.ratelimit import VendorCallBudget
from gateway.resolvers.mutation import Mutation
from gateway.resolvers.query import Query
from gateway.resolvers.subscription import Subscription
from gateway.settings import Settings
from gateway.store.health import is_unavailable
from gateway.types.events import LivepushStream, LoopCall, LoopSession, StreamloopStream

log = logging.getLogger("gateway.errors")


class ErrorCodes(SchemaExtension):
    """Gives each error `extensions.code` (and `vendor`, `retryable` for vendor errors), adds the errors
    resolvers deferred beside their data, and masks anything unexpected as INTERNAL."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if result is not None:
            self._shape(result)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        # A streamed operation (SSE, websocket) sends each result as it comes, before the operation ends.
        self._shape(result)
        yield

    def _shape(self, result: Any) -> None:
        context = self.execution_context.context
        errors = [shape_error(e, context) for e in getattr(result, "errors", None) or []]
        deferred_errors = getattr(context, "deferred_errors", None)
        for deferred in deferred_errors or ():
            errors.append(
                GraphQLError(deferred.error.message, path=deferred.path, extensions=deferred.error.extensions())
            )
        if deferred_errors:
            deferred_errors.clear()  # reported once, with the result they were found for
        if hasattr(result, "errors"):
            result.errors = errors or None
        # The parts of an incremental delivery carry their own errors.
        for part in [*(getattr(result, "incremental", None) or ()), *(getattr(result, "completed", None) or ())]:
            if getattr(part, "errors", None):
                part.errors = [shape_error(e, context) for e in part.errors]


def shape_error(error: GraphQLError, context: Any) -> GraphQLError:
    try:
        return _shaped(error, context)
    finally:
        # Once the error is coded (and an unexpected one logged), what raised it is not needed: its frames
        # hold the executor, which holds the error, a cycle that kept the whole request in memory until the
        # cyclic garbage collector came by.
        _drop_tracebacks(error)


def _drop_tracebacks(error: BaseException | None) -> None:
    seen: set[int] = set()
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        error.__traceback__ = None
        if isinstance(error, GraphQLError) and error.original_error is not None:
            _drop_tracebacks(error.original_error)
        error = error.__cause__ or error.__context__


def _shaped(error: GraphQLError, context: Any) -> GraphQLError:
    original = error.original_error
    if isinstance(original, GatewayError):
        error.extensions = original.extensions()
        return error
    if isinstance(original, CannotGetOperationTypeError | InvalidOperationTypeError):
        message, code = operation_type_error(original)
        return GraphQLError(message, extensions={"code": code})
    if isinstance(original, MissingQueryError):
        return GraphQLError(EMPTY_DOCUMENT, extensions={"code": "GRAPHQL_PARSE_FAILED"})
    if isinstance(original, GraphQLError):
        # a permission class's FORBIDDEN carries its code; a variable that does not coerce has none
        error.extensions = {"code": _request_error_code(error), **(original.extensions or {})}
        return error
    if original is None:
        if not error.extensions or "code" not in error.extensions:
            error.extensions = {**(error.extensions or {}), "code": _request_error_code(error)}
        return error
    if is_unavailable(original):
        # MongoDB did not answer, wherever the resolver met it: coded, and noted so that what follows is
        # refused at once until it answers again.
        services = getattr(context, "services", None)
        unavailable = (
            services.store.health.unavailable(original)
            if services is not None
            else StoreUnavailable(f"MongoDB did not answer ({type(original).__name__}); try again shortly")
        )
        return GraphQLError(
            unavailable.message, nodes=error.nodes, path=error.path, extensions=unavailable.extensions()
        )
    request_id = getattr(context, "request_id", None)
    log.error("unexpected error (request %s)", request_id, exc_info=original)
    return GraphQLError(
        f"Internal error (request id {request_id})",
        nodes=error.nodes,
        path=error.path,
        extensions={"code": "INTERNAL", "requestId": request_id},
    )


EMPTY_DOCUMENT = "Syntax Error: the document is empty."


def operation_type_error(error: CannotGetOperationTypeError | InvalidOperationTypeError) -> tuple[str, str]:
    """The message and code of a document whose operation cannot be run: none, an unknown name, or a type the
    transport does not run (a mutation over GET)."""
    if isinstance(error, InvalidOperationTypeError):
        if error.operation_type is OperationType.MUTATION:
            return "mutations are sent with POST", "METHOD_NOT_ALLOWED"
        return f"{error.operation_type.value} operations are not served here", "BAD_REQUEST"
    if error.operation_name:
        return f'Unknown operation named "{error.operation_name}".', "OPERATION_RESOLUTION_FAILURE"
    return "The document has no operation to run.", "OPERATION_RESOLUTION_FAILURE"


#: how graphql-core words a variable whose value does not coerce (the document itself is fine)
VALUE_ERRORS = ("has invalid value", "got invalid value", "was not provided", "must not be null")


def _request_error_code(error: GraphQLError) -> str:
    if is_limit_error(error.message):
        return QUERY_TOO_COMPLEX
    if error.message.startswith("Syntax Error"):
        return "GRAPHQL_PARSE_FAILED"
    if error.message.startswith("Variable ") and any(marker in error.message for marker in VALUE_ERRORS):
        return "BAD_USER_INPUT"
    return "GRAPHQL_VALIDATION_FAILED"


class GatewaySchema(strawberry.Schema):
    async def execute(self, *args: Any, **kwargs: Any) -> ExecutionResult:
        result = await super().execute(*args, **kwargs)
        # An error raised inside an extension's hook (a parse error from the parser cache) ends the operation
        # before ErrorCodes sees the result; it gets its code here.
        errors: list[GraphQLError] = getattr(result, "errors", None) or []  # a container of parts has none
        if any(not e.extensions or "code" not in e.extensions for e in errors):
            context = kwargs.get("context_value")
            result.errors = [e if e.extensions and "code" in e.extensions else shape_error(e, context) for e in errors]
        return result

    async def stream(self, *args: Any, **kwargs: Any) -> StreamResult:
        results = await super().stream(*args, **kwargs)
        return self._coded(results, kwargs.get("context_value"))

    async def _coded(self, results: StreamResult, context: Any) -> StreamResult:
        # As in `execute`: an error raised inside an extension's hook (a parse error from the parser cache)
        # leaves the stream instead of being yielded; it becomes the operation's one result, coded.
        try:
            async with aclosing(results):
                async for result in results:
                    yield result
        except GraphQLError as error:
            yield PreExecutionError(data=None, errors=[shape_error(error, context)])

    def process_errors(self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None) -> None:
        # Expected errors (vendor failures, bad input) are answers, not incidents; ErrorCodes logs the rest.
        return None


def build_schema(settings: Settings | None = None) -> strawberry.Schema:
    settings = settings or Settings(_env_file=None)  # type: ignore[call-arg]
    return GatewaySchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[LoopCall, LoopSession, StreamloopStream, LivepushStream],
        # @defer and @stream, answered over multipart/mixed (graphql_http) to clients that accept it.
        config=StrawberryConfig(enable_experimental_incremental_execution=True),
        execution_context_class=Executor,
        extensions=[
            partial(
                ExtensionChain,
                [
                    *limit_extensions(settings.limits),
                    TrustedDocumentsOnly,
                    ErrorCodes,
                    OperationMetrics,
                    VendorCallBudget,
                ],
            ),
            *tracing_extensions(settings.otel_enabled),
        ],
    )
