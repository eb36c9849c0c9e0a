"""The circuit breaker: its states on a clock the test moves, then through a real gateway and the simulators.

Through the gateway, what matters is what callers and operators see: a sick vendor stops being called
once its breaker opens (the simulator counts nothing more), the errors say so, `vendors`, /readyz and
/metrics show it, one probe at a time is let by after `breaker_reset`, and the other vendors carry on.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any

import pytest

from gateway.errors import (
    CircuitOpen,
    VendorAuthError,
    VendorError,
    VendorNotFound,
    VendorProtocolError,
    VendorRateLimited,
    VendorRejected,
    VendorTimeout,
    VendorUnavailable,
)
from gateway.ids import encode_global_id
from gateway.model import SOURCE_VENDOR, Source, Vendor
from gateway.settings import ResponseCacheSettings, Settings, VendorSettings
from gateway.vendors.resilience import CircuitBreaker, CircuitState, counts_against_vendor, is_retryable
from tests.conftest import Sim
from tests.gateway_harness import Gateway
from tests.test_fault_matrix import ALIASES, SIM_VENDOR, Seeded, seed_one_of_each

# --- the breaker on its own ---------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


FAILURES = 3
RESET = 10.0


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def breaker(clock: FakeClock) -> CircuitBreaker:
    return CircuitBreaker(Vendor.STREAMLOOP, FAILURES, RESET, clock=clock)


def open_it(breaker: CircuitBreaker) -> None:
    for _ in range(FAILURES):
        assert breaker.admit()
        breaker.failed()
    assert breaker.state is CircuitState.OPEN


def test_opens_after_the_configured_consecutive_failures(breaker: CircuitBreaker) -> None:
    for failures in range(1, FAILURES):
        breaker.failed()
        assert breaker.state is CircuitState.CLOSED
        assert breaker.consecutive_failures == failures
        assert breaker.admit()
    breaker.failed()
    assert breaker.state is CircuitState.OPEN
    assert breaker.consecutive_failures == FAILURES
    assert not breaker.admit()


def test_a_success_starts_the_count_again(breaker: CircuitBreaker) -> None:
    for _ in range(FAILURES - 1):
        breaker.failed()
    breaker.succeeded()
    assert breaker.consecutive_failures == 0
    # Failures that are not consecutive never add up to an open breaker.
    for _ in range(FAILURES - 1):
        breaker.failed()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.admit()


def test_open_refuses_without_calling_and_says_when_to_come_back(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_it(breaker)
    clock.advance(4.0)
    with pytest.raises(CircuitOpen) as refused:
        breaker.check()
    assert refused.value.retry_in == pytest.approx(RESET - 4.0)
    assert refused.value.vendor is Vendor.STREAMLOOP
    ext = refused.value.extensions()
    assert ext["code"] == "VENDOR_UNAVAILABLE"
    assert ext["retryable"] is True
    assert ext["circuit"] == "open"
    assert ext["retryAfter"] == pytest.approx(RESET - 4.0)
    # Still open a moment before the reset is due.
    clock.advance(RESET - 4.0 - 0.001)
    assert breaker.state is CircuitState.OPEN
    assert not breaker.admit()


def test_half_open_admits_exactly_one_probe(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_it(breaker)
    clock.advance(RESET)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.admit()
    # Everyone else waits for the probe's verdict, however long it takes.
    for _ in range(5):
        assert not breaker.admit()
        clock.advance(RESET)
    with pytest.raises(CircuitOpen):
        breaker.check()
    assert breaker.state is CircuitState.HALF_OPEN


def test_a_successful_probe_closes(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_it(breaker)
    clock.advance(RESET)
    assert breaker.admit()
    breaker.succeeded()
    assert breaker.state is CircuitState.CLOSED
    assert breaker.consecutive_failures == 0
    assert breaker.admit() and breaker.admit()


def test_a_failed_probe_opens_again_for_a_whole_reset(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_it(breaker)
    clock.advance(RESET + 5.0)
    probe = breaker.admit()
    assert probe is not None and probe.probe
    breaker.failed(probe)
    # One failed probe is enough, whatever the count, and the wait starts over from the probe.
    assert breaker.state is CircuitState.OPEN
    assert breaker.retry_in() == pytest.approx(RESET)
    clock.advance(RESET - 0.001)
    assert not breaker.admit()
    clock.advance(0.001)
    assert breaker.state is CircuitState.HALF_OPEN
    assert breaker.admit()


def test_an_abandoned_probe_lets_the_next_caller_probe(breaker: CircuitBreaker, clock: FakeClock) -> None:
    open_it(breaker)
    clock.advance(RESET)
    probe = breaker.admit()
    assert probe is not None
    # Cancelled before the vendor said anything: no verdict, so the breaker must not stay stuck waiting.
    breaker.abandoned(probe)
    assert breaker.admit()
    assert not breaker.admit()
    breaker.succeeded()
    assert breaker.state is CircuitState.CLOSED


def test_a_call_from_before_the_opening_cannot_give_up_the_probe(breaker: CircuitBreaker, clock: FakeClock) -> None:
    older = breaker.admit()  # still in flight when the breaker opens
    assert older is not None
    open_it(breaker)
    clock.advance(RESET)
    assert breaker.admit()  # the probe
    breaker.abandoned(older)  # the older call is cancelled, not the probe
    assert not breaker.admit()
    breaker.failed(older)  # nor does its failure stand for the probe's
    assert breaker.state is CircuitState.HALF_OPEN
    assert not breaker.admit()


def test_state_changes_are_told_once_each(breaker: CircuitBreaker, clock: FakeClock) -> None:
    told: list[tuple[Vendor, CircuitState]] = []
    breaker.on_change = lambda vendor, state: told.append((vendor, state))
    open_it(breaker)
    breaker.failed()  # already open: nothing new to tell
    clock.advance(RESET)
    assert breaker.admit()
    breaker.succeeded()
    breaker.succeeded()
    assert told == [
        (Vendor.STREAMLOOP, CircuitState.OPEN),
        (Vendor.STREAMLOOP, CircuitState.HALF_OPEN),
        (Vendor.STREAMLOOP, CircuitState.CLOSED),
    ]


@pytest.mark.parametrize(
    ("error", "counts"),
    [
        (VendorTimeout(Vendor.LOOP, "slow"), True),
        (VendorUnavailable(Vendor.LOOP, "502", status=502), True),
        (VendorProtocolError(Vendor.LOOP, "bad JSON", status=200), True),
        # The vendor answering as it should, or our own refusal: not the vendor being unwell.
        (VendorNotFound(Vendor.LOOP, "404", status=404), False),
        (VendorRejected(Vendor.LOOP, "400", status=400), False),
        (VendorAuthError(Vendor.LOOP, "401", status=401), False),
        (VendorRateLimited(Vendor.LOOP, "429", status=429, retry_after=1.0), False),
        (CircuitOpen(Vendor.LOOP, "open", retry_in=1.0), False),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, VendorError) else str(value),
)
def test_what_counts_against_a_vendor(error: VendorError, counts: bool) -> None:
    assert counts_against_vendor(error) is counts


@pytest.mark.parametrize(
    ("error", "retryable"),
    [
        (VendorTimeout(Vendor.LOOP, "slow"), True),
        (VendorUnavailable(Vendor.LOOP, "502", status=502), True),
        (VendorRateLimited(Vendor.LOOP, "429", status=429, retry_after=None), True),
        (VendorRateLimited(Vendor.LOOP, "429", status=429, retry_after=2.0), True),
        (VendorRateLimited(Vendor.LOOP, "429", status=429, retry_after=2.5), False),
        (VendorProtocolError(Vendor.LOOP, "bad JSON", status=200), False),
        (CircuitOpen(Vendor.LOOP, "open", retry_in=1.0), False),
        (VendorAuthError(Vendor.LOOP, "401", status=401), False),
        (VendorNotFound(Vendor.LOOP, "404", status=404), False),
    ],
    ids=[
        "timeout",
        "5xx",
        "429-without-retry-after",
        "429-at-the-limit",
        "429-past-the-limit",
        "malformed",
        "circuit-open",
        "401",
        "404",
    ],
)
def test_what_is_tried_again(error: VendorError, retryable: bool) -> None:
    assert is_retryable(error, VendorSettings(retry_after_max=2.0)) is retryable


# --- through the gateway ------------------------------------------------------------------------------

QUERY = """
query($call: ID!, $session: ID!, $streamloop: ID!, $livepush: ID!) {
  call: liveEvent(id: $call) { id nativeId title }
  session: liveEvent(id: $session) { id nativeId title }
  streamloop: liveEvent(id: $streamloop) { id nativeId title }
  livepush: node(id: $livepush) { ... on LiveEvent { id nativeId title } }
}"""
VENDORS = "{ vendors { vendor circuit consecutiveFailures } }"

BREAKER_RESET = 0.3
#: failed queries that open the breaker (each read is one call: the failing vendor is not retried)
QUERIES_TO_OPEN = 3


def sources_of(vendor: Vendor) -> list[Source]:
    return [s for s in Source if SOURCE_VENDOR[s] is vendor]


class World:
    """One event per source, and the gateway's view of them, for asserting on a whole query at once."""

    def __init__(self, sim: Sim, gw: Gateway, seeded: Seeded) -> None:
        self.sim = sim
        self.gw = gw
        self.seeded = seeded

    def expected(self, source: Source) -> dict[str, Any]:
        native = self.seeded.native[source]
        return {"id": encode_global_id(source, native), "nativeId": native, "title": self.seeded.titles[source]}

    async def query(self) -> dict[str, Any]:
        return await self.gw.query(QUERY, self.seeded.variables())

    async def vendors(self) -> dict[str, dict[str, Any]]:
        body = await self.gw.query(VENDORS)
        return {row["vendor"]: row for row in body["data"]["vendors"]}

    async def requests(self, vendor: Vendor) -> int:
        return await self.sim.vendor_requests(SIM_VENDOR[vendor])

    def assert_others_whole(self, body: dict[str, Any], failing: Vendor) -> None:
        for source in Source:
            if SOURCE_VENDOR[source] is not failing:
                assert body["data"][ALIASES[source]] == self.expected(source), body
        assert all(e["extensions"]["vendor"] == failing.value for e in body.get("errors", [])), body

    async def assert_others_closed(self, failing: Vendor) -> None:
        rows = await self.vendors()
        for vendor in Vendor:
            if vendor is not failing:
                assert rows[vendor.value] == {"vendor": vendor.value, "circuit": "CLOSED", "consecutiveFailures": 0}

    async def wait_for_circuit(self, vendor: Vendor, state: str) -> None:
        for _ in range(200):
            if (await self.vendors())[vendor.value]["circuit"] == state:
                return
            await asyncio.sleep(0.01)
        raise AssertionError(f"{vendor.value} never became {state}")


def sick_settings(settings_for: Callable[..., Settings], vendor: Vendor, **update: Any) -> dict[str, VendorSettings]:
    name = SIM_VENDOR[vendor]
    reads = len(sources_of(vendor))
    values: dict[str, Any] = {
        "connect_timeout": 0.2,
        "read_timeout": 0.3,
        "retries": 0,
        "breaker_failures": QUERIES_TO_OPEN * reads,
        "breaker_reset": BREAKER_RESET,
    }
    values.update(update)
    return {name: getattr(settings_for(), name).model_copy(update=values)}


async def get_text(gw: Gateway, path: str) -> tuple[int, str]:
    async with gw.http.get(f"{gw.url}{path}") as resp:
        return resp.status, await resp.text()


def circuit_gauge(metrics: str, vendor: Vendor) -> float:
    prefix = f'live_gateway_circuit_state{{vendor="{vendor.value}"}} '
    [line] = [line for line in metrics.splitlines() if line.startswith(prefix)]
    return float(line.removeprefix(prefix))


def circuit_errors(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [e["extensions"] for e in body.get("errors", []) if e["extensions"].get("circuit") == "open"]


@pytest.mark.parametrize(
    ("vendor", "fault"),
    [
        (Vendor.LOOP, {"error_burst": 1000, "error_status": 502}),
        (Vendor.STREAMLOOP, {"error_burst": 1000, "error_status": 500}),
        (Vendor.LIVEPUSH, {"hang": True}),
    ],
    ids=["loop-5xx", "streamloop-5xx", "livepush-hang"],
)
async def test_a_sick_vendor_is_cut_off_then_probed_back(
    sim: Sim,
    make_gateway: Callable[..., Any],
    settings_for: Callable[..., Settings],
    vendor: Vendor,
    fault: dict[str, Any],
) -> None:
    seeded = await seed_one_of_each(sim)
    failing = sources_of(vendor)
    reads = len(failing)
    settings = sick_settings(settings_for, vendor)
    failures_to_open = settings[SIM_VENDOR[vendor]].breaker_failures
    # Without the response cache and in-flight sharing, whose waiting for an identical query's answer would
    # make the concurrent queries below one after another: here they are to meet the breaker at once.
    no_sharing = ResponseCacheSettings(enabled=False, share_in_flight=False)
    async with make_gateway(**settings, response_cache=no_sharing) as gw:
        world = World(sim, gw, seeded)
        await sim.control("POST", "faults", {SIM_VENDOR[vendor]: fault})

        # Each failed read is one call and one failure; the breaker opens on the configured count.
        for query_number in range(1, QUERIES_TO_OPEN + 1):
            body = await world.query()
            assert all(body["data"][ALIASES[s]] is None for s in failing), body
            assert [e["extensions"]["code"] for e in body["errors"]] == ["VENDOR_UNAVAILABLE"] * reads
            assert circuit_errors(body) == []
            world.assert_others_whole(body, vendor)
            assert await world.requests(vendor) == query_number * reads
            expected_circuit = "OPEN" if query_number * reads >= failures_to_open else "CLOSED"
            assert (await world.vendors())[vendor.value] == {
                "vendor": vendor.value,
                "circuit": expected_circuit,
                "consecutiveFailures": query_number * reads,
            }
        await world.assert_others_closed(vendor)
        sent = await world.requests(vendor)
        assert sent == failures_to_open

        # Open: the vendor is not called at all, and the error says why and for how long.
        body = await world.query()
        assert await world.requests(vendor) == sent
        assert all(body["data"][ALIASES[s]] is None for s in failing)
        refused = circuit_errors(body)
        assert len(refused) == len(body["errors"]) == reads
        for ext in refused:
            assert ext["code"] == "VENDOR_UNAVAILABLE"
            assert ext["vendor"] == vendor.value
            assert ext["retryable"] is True
            assert 0 < ext["retryAfter"] <= BREAKER_RESET
        world.assert_others_whole(body, vendor)

        # Operators see it: readiness names the open circuit (one sick vendor leaves the gateway ready),
        # and the gauge reads 2 for open.
        status, text = await get_text(gw, "/readyz")
        assert status == 200, text
        ready = json.loads(text)
        assert ready["status"] == "ready"
        assert {name: v["circuit"] for name, v in ready["vendors"].items()} == {
            v.value: "open" if v is vendor else "closed" for v in Vendor
        }
        _, metrics = await get_text(gw, "/metrics")
        assert circuit_gauge(metrics, vendor) == 2.0
        assert all(circuit_gauge(metrics, v) == 0.0 for v in Vendor if v is not vendor)

        # After the reset, with the vendor still sick: one probe goes through, fails, and opens it again.
        await world.wait_for_circuit(vendor, "HALF_OPEN")
        body = await world.query()
        assert await world.requests(vendor) == sent + 1
        assert all(body["data"][ALIASES[s]] is None for s in failing)
        # A sibling read in the same query (Loop's call and session) is refused while the probe is out.
        assert len(circuit_errors(body)) == reads - 1
        assert (await world.vendors())[vendor.value]["circuit"] == "OPEN"
        body = await world.query()
        assert await world.requests(vendor) == sent + 1
        assert len(circuit_errors(body)) == reads
        sent += 1

        # Healthy again, if slow enough that the probe is still out while others arrive: of several
        # concurrent reads, exactly one reaches the vendor. The same read in the other queries shares
        # the probe's answer (in-flight deduplication); any other read is refused while it is out.
        await sim.control("POST", "faults", {SIM_VENDOR[vendor]: {"latency_ms": 200}})
        await world.wait_for_circuit(vendor, "HALF_OPEN")
        bodies = await asyncio.gather(*(world.query() for _ in range(3)))
        assert await world.requests(vendor) == sent + 1
        answered = [b["data"][ALIASES[s]] for b in bodies for s in failing if b["data"][ALIASES[s]] is not None]
        assert len(answered) == 3
        assert len({answer["id"] for answer in answered}) == 1
        assert sum(len(circuit_errors(b)) for b in bodies) == 3 * reads - 3
        for b in bodies:
            world.assert_others_whole(b, vendor)
        assert (await world.vendors())[vendor.value] == {
            "vendor": vendor.value,
            "circuit": "CLOSED",
            "consecutiveFailures": 0,
        }

        # Closed: every read is served again (the probe's event from the cache it filled).
        body = await world.query()
        assert "errors" not in body, body
        assert all(body["data"][ALIASES[s]] == world.expected(s) for s in Source)
        assert await world.requests(vendor) == sent + reads
        _, metrics = await get_text(gw, "/metrics")
        assert all(circuit_gauge(metrics, v) == 0.0 for v in Vendor)
        status, text = await get_text(gw, "/readyz")
        assert status == 200, text
        assert all(v["circuit"] == "closed" for v in json.loads(text)["vendors"].values())
        await world.assert_others_closed(vendor)


async def test_the_breaker_cuts_a_retry_sequence_short(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    seeded = await seed_one_of_each(sim)
    # More retries than the breaker tolerates failures: the attempt after it opens is never sent.
    settings = sick_settings(settings_for, Vendor.STREAMLOOP, retries=3, retry_backoff=0.01, breaker_failures=2)
    async with make_gateway(**settings) as gw:
        world = World(sim, gw, seeded)
        await sim.control("POST", "faults", {"streamloop": {"error_burst": 1000, "error_status": 502}})
        body = await world.query()
    assert await world.requests(Vendor.STREAMLOOP) == 2
    assert body["data"]["streamloop"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "VENDOR_UNAVAILABLE"
    assert error["extensions"]["circuit"] == "open"
    world.assert_others_whole(body, Vendor.STREAMLOOP)


async def test_every_circuit_open_makes_the_gateway_unready(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    seeded = await seed_one_of_each(sim)
    base = settings_for()
    update = {"retries": 0, "breaker_failures": 1, "breaker_reset": 30.0}
    settings = {name: getattr(base, name).model_copy(update=update) for name in SIM_VENDOR.values()}
    async with make_gateway(**settings) as gw:
        world = World(sim, gw, seeded)
        burst = {"error_burst": 1000, "error_status": 502}
        await sim.control("POST", "faults", dict.fromkeys(SIM_VENDOR.values(), burst))
        body = await world.query()
        assert all(value is None for value in body["data"].values())
        status, text = await get_text(gw, "/readyz")
        _, metrics = await get_text(gw, "/metrics")
    assert status == 503, text
    assert json.loads(text)["status"] == "not ready"
    assert all(circuit_gauge(metrics, v) == 2.0 for v in Vendor)
