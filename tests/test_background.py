"""Background tasks stop with the application: a round that ignores the stop is cancelled after the grace."""

from __future__ import annotations

import asyncio

import pytest
from aiohttp import web

from gateway import background


async def test_a_task_that_does_not_stop_is_cancelled_after_the_grace(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(background, "STOP_GRACE", 0.05)
    cancelled = asyncio.Event()

    async def stubborn(app: web.Application, stop: asyncio.Event) -> None:
        try:
            await asyncio.Event().wait()  # a vendor call that never answers
        except asyncio.CancelledError:
            cancelled.set()
            raise

    app = web.Application()
    app.cleanup_ctx.append(background.background_task("stubborn", stubborn))
    app.freeze()
    await app.startup()
    await app.cleanup()
    assert cancelled.is_set()


async def test_a_task_that_stops_finishes_its_round(monkeypatch: pytest.MonkeyPatch) -> None:
    finished = asyncio.Event()

    async def polite(app: web.Application, stop: asyncio.Event) -> None:
        await stop.wait()
        await asyncio.sleep(0)
        finished.set()

    app = web.Application()
    app.cleanup_ctx.append(background.background_task("polite", polite))
    app.freeze()
    await app.startup()
    await app.cleanup()
    assert finished.is_set()
