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
from dataclasses import dataclass
from typing import Any

from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext

#: one extension's hook for a step, started: a generator (sync or async) paused where it yields
_Started = Generator[Any, None, None] | AsyncGenerator[Any, None]

_HOOKS = ("on_operation", "on_parse", "on_validate", "on_stream_result")


@dataclass(frozen=True, slots=True)
class _Defined:
    """What an extension class defines itself (Strawberry's defaults do nothing), looked at once per class."""

    #: each hook it defines, and whether it is a generator (sync or async) rather than a plain function
    hooks: dict[str, bool]
    results: bool


_defined: dict[type[SchemaExtension], _Defined] = {}


def _defined_by(cls: type[SchemaExtension]) -> _Defined:
    defined = _defined.get(cls)
    if defined is None:
        # Hooks the chain does not run (none of the chained extensions has them): an extension with one runs
        # on its own, beside the chain.
        if cls._implements_resolve() or cls.on_execute is not SchemaExtension.on_execute:
            raise TypeError(f"{cls.__name__} hooks execution or resolves fields: it cannot run in the chain")
        hooks = {
            name: inspect.isgeneratorfunction(hook) or inspect.isasyncgenfunction(hook)
            for name in _HOOKS
            if (hook := getattr(cls, name)) is not getattr(SchemaExtension, name)
        }
        defined = _defined[cls] = _Defined(hooks, cls.get_results is not SchemaExtension.get_results)
    return defined


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

    def _started(self, hook: str, *args: Any) -> list[_Started]:
        """The hooks named `hook` of the chained extensions that have one, started, in order."""
        started = []
        for extension in self.chain:
            generator = _defined_by(type(extension)).hooks.get(hook)
            if generator is not None:
                function = getattr(extension, hook)
                started.append(function(*args) if generator else _before(function, *args))
        return started

    def on_operation(self) -> Iterator[None]:
        yield from _run_sync(self._started("on_operation"))

    def on_parse(self) -> Iterator[None]:
        yield from _run_sync(self._started("on_parse"))

    async def on_validate(self) -> AsyncIterator[None]:  # type: ignore[override]
        # An async generator, since one of the hooks may be (Strawberry runs validation inside `async with`).
        entered = await _enter_async(self._started("on_validate"))
        try:
            yield
        except BaseException as error:
            await _leave_async(entered, error)
        else:
            await _leave_async(entered, None)

    def on_stream_result(self, result: Any) -> Iterator[None]:
        yield from _run_sync(self._started("on_stream_result", result))

    async def get_results(self) -> dict[str, Any]:
        results: dict[str, Any] = {}
        for extension in self.chain:
            if not _defined_by(type(extension)).results:
                continue
            found = extension.get_results()
            results.update(await found if inspect.isawaitable(found) else found)
        return results


def _before(hook: Callable[..., Any], *args: Any) -> _Started:
    """A hook that is a plain or async function, as a generator: it runs before the step."""
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
        error = _resumed(hook, error)
    if error is not None:
        raise error


def _resumed(hook: Generator[None, None, None], error: BaseException | None) -> BaseException | None:
    """The error left once `hook` is resumed for the last time with `error` (None: it ended quietly, or it
    handled `error`)."""
    try:
        if error is None:
            next(hook)
        else:
            hook.throw(error)
    except StopIteration:
        return None
    except BaseException as raised:
        return raised
    raise RuntimeError(f"the hook {hook!r} yielded more than once")


async def _resumed_async(hook: AsyncGenerator[None, None], error: BaseException | None) -> BaseException | None:
    """`_resumed`, for a hook that is an async generator."""
    try:
        if error is None:
            await hook.__anext__()
        else:
            await hook.athrow(error)
    except StopAsyncIteration:
        return None
    except BaseException as raised:
        return raised
    raise RuntimeError(f"the hook {hook!r} yielded more than once")


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
    """`_leave_sync`, where a hook may be an async generator."""
    for hook in reversed(entered):
        error = await _resumed_async(hook, error) if isinstance(hook, AsyncGenerator) else _resumed(hook, error)
    if error is not None:
        raise error
