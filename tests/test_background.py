"""Background tasks stop with the application: a round that ignores the stop is cancelled after the grace."""

from __future__ import annotations

import asyncio
import logging

import pytest
from aiohttp import web
from pymongo.errors import NetworkTimeout, ServerSelectionTimeoutError

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


@pytest.mark.parametrize(
    "error", [ServerSelectionTimeoutError("127.0.0.1:1: connection refused"), NetworkTimeout("timed out")]
)
async def test_a_round_that_mongodb_does_not_answer_is_one_warning_line(
    error: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    # While MongoDB is down every round fails alike, each few seconds: the readiness check and the
    # requests say so; the log gets a line a round, not a traceback a round.
    stop = asyncio.Event()
    rounds = 0

    async def round() -> None:
        nonlocal rounds
        rounds += 1
        if rounds == 3:
            stop.set()
        raise error

    with caplog.at_level(logging.WARNING, logger=background.__name__):
        await background.repeat(stop, 0, round, "reconciliation round")
    assert rounds == 3
    assert [(record.levelno, record.exc_info) for record in caplog.records] == [(logging.WARNING, None)] * 3
    assert all(
        record.getMessage().startswith(f"reconciliation round failed: MongoDB did not answer ({type(error).__name__}")
        for record in caplog.records
    )


async def test_a_round_that_fails_otherwise_is_logged_with_its_traceback(caplog: pytest.LogCaptureFixture) -> None:
    stop = asyncio.Event()

    async def round() -> None:
        stop.set()
        raise KeyError("source")

    with caplog.at_level(logging.WARNING, logger=background.__name__):
        await background.repeat(stop, 0, round, "reconciliation round")
    [record] = caplog.records
    assert record.levelno == logging.ERROR and record.exc_info is not None
