"""The GraphQL executor: Strawberry's, without the reference cycle graphql-core's executor makes to itself.

graphql-core hands resolvers helpers for their asynchronous work (`info.async_helpers`) that are the
executor's own bound methods, so the executor refers to itself. Everything a request made is reachable
from its executor (the context, the loaders, the vendors' answers, the aiohttp request), so none of it was
freed when the answer went out: it waited for the cyclic garbage collector, whose runs under load came
every few requests and took about a quarter of the CPU each request cost. These helpers do the same work
from the two things it needs, neither of which refers back to the executor, so reference counting frees a
request's objects as soon as it is answered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import Any

from graphql.pyutils import gather_with_cancel
from graphql.type.definition import GraphQLResolveInfoHelpers
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext


def _gather(values: Sequence[Awaitable[Any]]) -> Awaitable[list[Any]]:
    """graphql-core's `gather_async_work`: the values awaited as one; one failing cancels the others."""
    return gather_with_cancel(*values)


def _track(is_awaitable: Callable[[Any], bool], background: set[asyncio.Future[Any]], values: Sequence[Any]) -> None:
    """graphql-core's `track_async_work`: the awaitables among `values` settled in the background, in the
    set of background work the executor shares with the executors of its deferred parts."""
    awaitables = [value for value in values if is_awaitable(value)]
    if not awaitables:
        return
    try:
        asyncio.get_running_loop()
    except RuntimeError:  # no loop to settle them on: they can never run
        for awaitable in awaitables:
            if asyncio.iscoroutine(awaitable):
                awaitable.close()
        return
    settling = asyncio.gather(*awaitables, return_exceptions=True)
    background.add(settling)
    settling.add_done_callback(background.discard)


class Executor(StrawberryGraphQLCoreExecutionContext):
    """One operation's execution, whose resolvers' helpers do not hold it."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.async_helpers = GraphQLResolveInfoHelpers(
            gather=_gather, track=partial(_track, self.is_awaitable, self.background_futures)
        )
