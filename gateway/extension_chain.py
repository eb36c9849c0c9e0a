"""The schema's extensions run as one Strawberry extension.

For every operation Strawberry wraps each hook of each extension in a context manager of its own (a
`contextlib` wrapper, an entry on an exit stack, a look at every extension for every step), which with
the gateway's nine extensions costs more CPU than what most of their hooks do. `ExtensionChain` holds
them and runs the hooks each one has, in order, as Strawberry would: entered in the order given, left in
the reverse order, an exception thrown into each hook on the way out (a hook may handle it).
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Generator, Iterator, Sequence
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

#: one extension's hook for a step, started: a generator (sync or async) paused where it yields
_Started = Generator[Any, None, None] | AsyncGenerator[Any, None]

_HOOKS = ("on_operation", "on_parse", "on_validate", "on_stream_result")
#: the hooks each extension class defines itself (Strawberry's defaults do nothing), by class
_defined: dict[type[SchemaExtension], frozenset[str]] = {}


def _hooks_of(cls: type[SchemaExtension]) -> frozenset[str]:
    hooks = _defined.get(cls)
    if hooks is None:
        hooks = _defined[cls] = frozenset(
            name for name in _HOOKS if getattr(cls, name) is not getattr(SchemaExtension, name)
        )
        # Hooks the chain does not run (none of the chained extensions has them): an extension with one runs
        # on its own, beside the chain.
        if cls._implements_resolve() or cls.on_execute is not SchemaExtension.on_execute:
            raise TypeError(f"{cls.__name__} hooks execution or resolves fields: it cannot run in the chain")
    return hooks


class ExtensionChain(SchemaExtension):
    """The extensions `factories` make, one set per operation, run as one."""

    def __init__(self, factories: Sequence[Callable[[], SchemaExtension]]) -> None:
        self.chain = [factory() for factory in factories]

    @property  # type: ignore[override]
    def execution_context(self) -> ExecutionContext:
        return self._execution_context

    @execution_context.setter
    def execution_context(self, context: ExecutionContext) -> None:
        self._execution_context = context
        for extension in self.chain:
            extension.execution_context = context

    def _with(self, hook: str) -> list[SchemaExtension]:
        return [extension for extension in self.chain if hook in _hooks_of(type(extension))]

    def on_operation(self) -> Iterator[None]:
        yield from _run_sync([_start(extension.on_operation) for extension in self._with("on_operation")])

    def on_parse(self) -> Iterator[None]:
        yield from _run_sync([_start(extension.on_parse) for extension in self._with("on_parse")])

    async def on_validate(self) -> AsyncIterator[None]:  # type: ignore[override]
        # An async generator, since one of the hooks may be (Strawberry runs validation inside `async with`).
        entered = await _enter_async([_start(extension.on_validate) for extension in self._with("on_validate")])
        try:
            yield
        except BaseException as error:
            await _leave_async(entered, error)
        else:
            await _leave_async(entered, None)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        hooks = [_start(extension.on_stream_result, result) for extension in self._with("on_stream_result")]
        yield from _run_sync(hooks)

    async def get_results(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for extension in self.chain:
            found = extension.get_results()
            results.update(await found if inspect.isawaitable(found) else found)
        return results


def _start(hook: Callable[..., Any], *args: Any) -> _Started:
    """The hook as a generator, whatever its kind (a plain or async function runs before the step)."""
    if inspect.isgeneratorfunction(hook) or inspect.isasyncgenfunction(hook):
        started: _Started = hook(*args)
        return started
    if inspect.iscoroutinefunction(hook):
        return _async_before(hook, *args)
    return _sync_before(hook, *args)


def _sync_before(hook: Callable[..., Any], *args: Any) -> Generator[None, None, None]:
    hook(*args)
    yield


async def _async_before(hook: Callable[..., Any], *args: Any) -> AsyncGenerator[None, None]:
    await hook(*args)
    yield


def _run_sync(hooks: list[_Started]) -> Generator[None, None, None]:
    entered: list[_Started] = []
    try:
        for hook in hooks:
            if isinstance(hook, AsyncGenerator):
                raise RuntimeError(f"the hook {hook!r} is async, in a step Strawberry runs synchronously")
            next(hook)
            entered.append(hook)
    except BaseException as error:
        _leave_sync(entered, error)
        raise
    try:
        yield
    except BaseException as error:
        _leave_sync(entered, error)
    else:
        _leave_sync(entered, None)


def _leave_sync(entered: list[_Started], error: BaseException | None) -> None:
    """Leave each hook, the last entered first, as `contextlib.ExitStack` leaves `contextmanager`s: `error`
    is thrown into each; one that handles it ends it for those left after it, one that raises replaces it."""
    for hook in reversed(entered):
        assert isinstance(hook, Generator)
        try:
            if error is None:
                next(hook)
            else:
                hook.throw(error)
        except StopIteration:
            error = None
            continue
        except BaseException as raised:
            error = raised
            continue
        raise RuntimeError(f"the hook {hook!r} yielded more than once")
    if error is not None:
        raise error


async def _enter_async(hooks: list[_Started]) -> list[_Started]:
    entered: list[_Started] = []
    try:
        for hook in hooks:
            if isinstance(hook, AsyncGenerator):
                await hook.__anext__()
            else:
                next(hook)
            entered.append(hook)
    except BaseException as error:
        await _leave_async(entered, error)
        raise
    return entered


async def _leave_async(entered: list[_Started], error: BaseException | None) -> None:
    for hook in reversed(entered):
        try:
            if isinstance(hook, AsyncGenerator):
                if error is None:
                    await hook.__anext__()
                else:
                    await hook.athrow(error)
            elif error is None:
                next(hook)
            else:
                hook.throw(error)
        except (StopIteration, StopAsyncIteration):
            error = None
            continue
        except BaseException as raised:
            error = raised
            continue
        raise RuntimeError(f"the hook {hook!r} yielded more than once")
    if error is not None:
        raise error
