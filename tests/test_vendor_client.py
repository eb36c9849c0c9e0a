"""The shared vendor client: one deadline covers the wait for a slot and the exchange."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from gateway.errors import VendorTimeout
from gateway.vendors.livepush import LivepushClient
from tests.conftest import Sim


async def test_the_wait_for_a_slot_counts_against_the_deadline(
    sim: Sim, http_session: aiohttp.ClientSession, settings_for: Any
) -> None:
    one_slot = settings_for().livepush.model_copy(
        # Not shared: two identical reads in flight at once would otherwise be one call.
        update={
            "max_concurrency": 1,
            "connect_timeout": 0.1,
            "read_timeout": 0.7,
            "retries": 0,
            "deduplicate_reads": False,
        }
    )
    client = LivepushClient(http_session, one_slot)
    await sim.control("POST", "faults", {"livepush": {"latency_ms": 500}})
    # Each answer takes 0.5 s; the second waits 0.5 s for the only slot first, past its 0.8 s deadline.
    first, second = await asyncio.gather(client.list_streams(), client.list_streams(), return_exceptions=True)
    assert isinstance(first, list)
    assert isinstance(second, VendorTimeout)
