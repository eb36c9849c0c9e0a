"""Background work of the application: tasks that live as long as the app, and rounds repeated until it
stops."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

from aiohttp import web

from gateway.store.health import is_unavailable

log = logging.getLogger(__name__)

#: how long a background task gets to finish its round once the application stops
STOP_GRACE = 2.0


async def repeat(stop: asyncio.Event, interval: float, round: Callable[[], Awaitable[Any]], what: str) -> None:
    """Run `round` now and then every `interval` seconds until `stop` is set; a failed round is logged,
    and the next one runs as usual.

    A round MongoDB did not answer is one warning line: while it is down every round fails alike, and
    `/readyz` and the requests' STORE_UNAVAILABLE already say so; a traceback a round would bury the log."""
    while not stop.is_set():
        try:
            await round()
        except Exception as error:
            if is_unavailable(error):
                log.warning("%s failed: MongoDB did not answer (%s)", what, type(error).__name__)
            else:
                log.exception("%s failed", what)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), timeout=interval)


def background_task(
    name: str,
    run: Callable[[web.Application, asyncio.Event], Coroutine[Any, Any, None]],
    enabled: Callable[[web.Application], bool] = lambda app: True,
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context that runs `run(app, stop)` while the application runs. On shutdown `stop` is set
    and the task gets `STOP_GRACE` seconds to finish its round; then it is cancelled, so that a round held
    up by a slow vendor cannot hold the process past its shutdown bound (work it leaves, such as a journaled
    operation, is taken over as after a crash)."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        if not enabled(app):
            yield
            return
        stop = asyncio.Event()
        task = asyncio.create_task(run(app, stop), name=name)
        yield
        stop.set()
        done, _ = await asyncio.wait({task}, timeout=STOP_GRACE)
        if not done:
            log.warning("%s did not stop within %g s; cancelled", name, STOP_GRACE)
            task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context
