"""The schema's extensions run as one: each hook once per operation, in Strawberry's order, unwound as
Strawberry unwinds them when something fails."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from functools import partial

import pytest
import strawberry
from strawberry.extensions import SchemaExtension

from gateway.extension_chain import ExtensionChain


def recording(name: str, log: list[str], *, handles: bool = False) -> type[SchemaExtension]:
    class Recording(SchemaExtension):
        def on_operation(self) -> Iterator[None]:
            log.append(f"{name} operation in")
            try:
                yield
            except ValueError:
                log.append(f"{name} saw the error")
                if not handles:
                    raise
                return
            log.append(f"{name} operation out")

        def on_parse(self) -> Iterator[None]:
            log.append(f"{name} parse")
            yield

        def get_results(self) -> dict[str, str]:
            return {name: "result"}

    return Recording


def async_validating(log: list[str]) -> type[SchemaExtension]:
    class AsyncValidating(SchemaExtension):
        async def on_validate(self) -> AsyncIterator[None]:
            assert self.execution_context.graphql_document is not None
            log.append("async validate in")
            yield
            log.append("async validate out")

    return AsyncValidating


@strawberry.type
class Query:
    @strawberry.field
    def hello(self) -> str:
        return "world"

    @strawberry.field
    def fails(self) -> str:
        raise ValueError("no")


async def test_each_hook_runs_once_per_operation_in_order_with_the_operations_context() -> None:
    log: list[str] = []
    chained = [recording("a", log), recording("b", log), async_validating(log)]
    schema = strawberry.Schema(Query, extensions=[partial(ExtensionChain, chained)])
    result = await schema.execute("{ hello }")
    assert result.data == {"hello": "world"}
    assert log == [
        "a operation in",
        "b operation in",
        "a parse",
        "b parse",
        "async validate in",
        "async validate out",
        "b operation out",
        "a operation out",
    ]
    log.clear()
    await schema.execute("{ hello }")
    assert len(log) == 8  # extensions of its own for each operation, run once each


def test_an_error_is_thrown_into_each_hook_the_last_entered_first_and_one_that_handles_it_ends_it() -> None:
    from gateway.extension_chain import _run_sync

    log: list[str] = []
    outer, inner = recording("outer", log)(), recording("inner", log, handles=True)()
    run = _run_sync([outer.on_operation(), inner.on_operation()])  # type: ignore[list-item]
    next(run)
    with pytest.raises(StopIteration):
        run.throw(ValueError("failed in the step"))
    # inner handled it: outer leaves as if nothing failed
    assert log == ["outer operation in", "inner operation in", "inner saw the error", "outer operation out"]

    log.clear()
    outer, inner = recording("outer", log)(), recording("inner", log)()
    run = _run_sync([outer.on_operation(), inner.on_operation()])  # type: ignore[list-item]
    next(run)
    error = ValueError("failed in the step")
    with pytest.raises(ValueError) as raised:
        run.throw(error)
    assert raised.value is error
    assert log == ["outer operation in", "inner operation in", "inner saw the error", "outer saw the error"]


def test_an_extension_that_hooks_execution_is_refused_rather_than_skipped() -> None:
    class Timing(SchemaExtension):
        def on_execute(self) -> Iterator[None]:
            yield

    with pytest.raises(TypeError, match="Timing"):
        ExtensionChain([Timing])._started("on_operation")


async def test_results_of_every_chained_extension_are_merged() -> None:
    log: list[str] = []
    schema = strawberry.Schema(Query, extensions=[partial(ExtensionChain, [recording("a", log), recording("b", log)])])
    result = await schema.execute("{ hello }")
    assert result.extensions == {"a": "result", "b": "result"}
