"""The shared vendor client: the wait for a slot is bounded apart from the exchange's deadline."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp

from gateway.errors import VendorBusy
from gateway.vendors.livepush import LivepushClient
from gateway.vendors.resilience import CircuitState
from tests.conftest import Sim


async def test_the_wait_for_a_slot_is_bounded_on_its_own_and_is_no_vendor_failure(
    sim: Sim, http_session: aiohttp.ClientSession, settings_for: Any
) -> None:
    def one_slot(slot_wait: float) -> LivepushClient:
        settings = settings_for().livepush.model_copy(
            # Not shared: two identical reads in flight at once would otherwise be one call.
            update={
                "max_concurrency": 1,
                "connect_timeout": 0.1,
                "read_timeout": 0.7,
                "retries": 0,
                "deduplicate_reads": False,
                "slot_wait": slot_wait,
                "breaker_failures": 1,
            }
        )
        return LivepushClient(http_session, settings)

    await sim.control("POST", "faults", {"livepush": {"latency_ms": 500}})
    # Each answer takes 0.5 s; the second waits 0.5 s for the only slot, then has its whole 0.8 s deadline.
    patient = one_slot(slot_wait=2.0)
    first, second = await asyncio.gather(patient.list_streams(), patient.list_streams(), return_exceptions=True)
    assert isinstance(first, list) and isinstance(second, list)
    # A wait longer than slot_wait fails as busy: not sent, and not held against the vendor.
    hurried = one_slot(slot_wait=0.2)
    first, second = await asyncio.gather(hurried.list_streams(), hurried.list_streams(), return_exceptions=True)
    assert isinstance(first, list)
    assert isinstance(second, VendorBusy)
    assert second.code == "VENDOR_UNAVAILABLE"
    assert hurried.breaker.state is CircuitState.CLOSED and hurried.breaker.consecutive_failures == 0
    assert hurried.health.last_error is None
