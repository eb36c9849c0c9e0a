"""What marks the store down in a replica, and what brings it back: MongoDB not answering does; an
answer that says no, or this replica's own pool being busy, does not."""

from __future__ import annotations

import asyncio

import pytest
from pymongo.errors import (
    AutoReconnect,
    DuplicateKeyError,
    NetworkTimeout,
    ServerSelectionTimeoutError,
    WaitQueueTimeoutError,
)

from gateway.errors import StoreUnavailable
from gateway.store.health import StoreHealth, is_unavailable


class Server:
    """A ping that fails until `answering` is set, counting the pings."""

    def __init__(self) -> None:
        self.answering = False
        self.pings = 0

    async def ping(self) -> None:
        self.pings += 1
        if not self.answering:
            raise ServerSelectionTimeoutError("no server")


@pytest.mark.parametrize(
    "error", [ServerSelectionTimeoutError("none"), AutoReconnect("reset"), NetworkTimeout("timed out")]
)
async def test_mongodb_not_answering_marks_the_store_down_until_a_ping_answers(error: Exception) -> None:
    server = Server()
    health = StoreHealth(server.ping, probe_interval=0.001)
    assert is_unavailable(error)
    health.failed(error)
    with pytest.raises(StoreUnavailable) as refused:
        health.check()
    assert refused.value.extensions() == {"code": "STORE_UNAVAILABLE", "retryable": True}
    for _ in range(50):
        await asyncio.sleep(0.002)
    assert not health.available and server.pings > 1
    server.answering = True
    for _ in range(1000):
        if health.available:
            break
        await asyncio.sleep(0.002)
    health.check()
    pings = server.pings
    await asyncio.sleep(0.01)
    assert server.pings == pings  # no probing while it answers
    await health.close()


@pytest.mark.parametrize("error", [DuplicateKeyError("taken"), WaitQueueTimeoutError("pool busy"), ValueError()])
async def test_an_answer_that_says_no_or_a_busy_pool_leaves_the_store_up(error: Exception) -> None:
    health = StoreHealth(Server().ping)
    health.failed(error)
    health.check()
    assert health.available
    await health.close()
