"""Every vendor under every kind of failure, seen through one GraphQL query that reads all four sources.

Each row turns one fault on for one vendor and reads one seeded event of each source with a cold cache.
What is asserted comes from the vendor settings, never from a stopwatch: the failing vendor's fields are
null with an error saying what happened, it received exactly the attempts its settings allow, the other
vendors' events arrive whole, and the longest such a call can take is what `worst_case_seconds` derives
from the same settings.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest

from gateway.ids import encode_global_id
from gateway.model import SOURCE_VENDOR, Source, Vendor
from gateway.settings import Settings, VendorSettings
from gateway.vendors.resilience import worst_case_seconds
from tests.conftest import SIM_TOKEN, Sim
from tests.gateway_harness import Gateway

#: Small enough that a timed-out attempt costs half a second; the 429 rows need `retry_after_max` of at
#: least one second, since the simulator rounds Retry-After up to whole seconds.
TIGHT: dict[str, Any] = {
    "connect_timeout": 0.2,
    "read_timeout": 0.3,
    "retries": 2,
    "retry_backoff": 0.01,
    "retry_after_max": 1.5,
    # The breaker has its own tests; here it must not cut a retry sequence short.
    "breaker_failures": 100,
}

#: The simulator's Retry-After for each 429 row: one the gateway waits out, one it refuses to wait for.
SHORT_RETRY_AFTER = 1
LONG_RETRY_AFTER = 4

#: The alias under which the query reads each source.
ALIASES: dict[Source, str] = {
    Source.LOOP_CALL: "call",
    Source.LOOP_SESSION: "session",
    Source.STREAMLOOP_STREAM: "streamloop",
    Source.LIVEPUSH_STREAM: "livepush",
}

# `node` for one of them, so that both ways of reading by id meet the same faults.
QUERY = """
query($call: ID!, $session: ID!, $streamloop: ID!, $livepush: ID!) {
  call: liveEvent(id: $call) { ...seen }
  session: liveEvent(id: $session) { ...seen }
  streamloop: liveEvent(id: $streamloop) { ...seen }
  livepush: node(id: $livepush) { ... on LiveEvent { ...seen } }
}
fragment seen on LiveEvent { id source vendor nativeId title freshness { servedFrom stale } }
"""

SIM_VENDOR = {Vendor.LOOP: "loop", Vendor.STREAMLOOP: "streamloop", Vendor.LIVEPUSH: "livepush"}


@dataclass(frozen=True)
class Fault:
    """One way a vendor can fail, and what the gateway must make of it."""

    knobs: dict[str, Any]
    code: str
    retryable: bool
    #: whether the client tries again (so the vendor sees 1 + retries attempts per read)
    retried: bool
    retry_after: float | None = None


FAULTS: dict[str, Fault] = {
    # Latency well past read_timeout: every attempt times out.
    "slow": Fault({"latency_ms": 1500}, "VENDOR_UNAVAILABLE", retryable=True, retried=True),
    "5xx-burst": Fault({"error_status": 502}, "VENDOR_UNAVAILABLE", retryable=True, retried=True),
    # A plain outage answered 503, as a load balancer would; the same as any other 5xx.
    "503-burst": Fault({"error_status": 503}, "VENDOR_UNAVAILABLE", retryable=True, retried=True),
    "hang": Fault({"hang": True}, "VENDOR_UNAVAILABLE", retryable=True, retried=True),
    # The same request would be answered the same way: retrying it only doubles the load.
    "malformed-json": Fault({"malformed_json": True}, "VENDOR_UNAVAILABLE", retryable=True, retried=False),
    "429-short-retry-after": Fault(
        {"rate_limited": SHORT_RETRY_AFTER},
        "RATE_LIMITED",
        retryable=True,
        retried=True,
        retry_after=SHORT_RETRY_AFTER,
    ),
    "429-long-retry-after": Fault(
        {"rate_limited": LONG_RETRY_AFTER},
        "RATE_LIMITED",
        retryable=True,
        retried=False,
        retry_after=LONG_RETRY_AFTER,
    ),
    # Our credentials are wrong: no retry fixes that, and the caller cannot either.
    "401": Fault({"unauthorized": True}, "VENDOR_NOT_CONFIGURED", retryable=False, retried=False),
}


def reads_per_query(vendor: Vendor) -> int:
    """Vendor requests one cold read of the query costs: one per source (Livepush's batch read is its
    list endpoint, also a single request)."""
    return sum(1 for v in SOURCE_VENDOR.values() if v is vendor)


def tight(settings_for: Callable[..., Settings]) -> dict[str, VendorSettings]:
    base = settings_for()
    return {name: getattr(base, name).model_copy(update=TIGHT) for name in SIM_VENDOR.values()}


@dataclass(frozen=True)
class Seeded:
    native: dict[Source, str]
    titles: dict[Source, str]

    def variables(self) -> dict[str, str]:
        return {ALIASES[s]: encode_global_id(s, native) for s, native in self.native.items()}

    def expected(self, source: Source) -> dict[str, Any]:
        return {
            "id": encode_global_id(source, self.native[source]),
            "source": source.value,
            "vendor": SOURCE_VENDOR[source].value,
            "nativeId": self.native[source],
            "title": self.titles[source],
            "freshness": {"servedFrom": "VENDOR", "stale": False},
        }


async def seed_one_of_each(sim: Sim) -> Seeded:
    """One event per source, with its title as the vendor itself shows it (asked before the counts are
    reset, so these reads are not counted against the row)."""
    ids = await sim.control("POST", "seed", {"seed": 11, "count": 1})
    native = {source: ids[source.value.lower()][0] for source in Source}
    paths = {
        Source.LOOP_CALL: f"{sim.loop_url}/v1/live/calls/{native[Source.LOOP_CALL]}",
        Source.LOOP_SESSION: f"{sim.loop_url}/v1/sessions/{native[Source.LOOP_SESSION]}",
        Source.STREAMLOOP_STREAM: f"{sim.streamloop_url}/streams/{native[Source.STREAMLOOP_STREAM]}",
        Source.LIVEPUSH_STREAM: f"{sim.livepush_url}/streams/{native[Source.LIVEPUSH_STREAM]}",
    }
    titles: dict[Source, str] = {}
    for source, url in paths.items():
        async with sim.http.get(url, headers={"Authorization": f"Bearer {SIM_TOKEN}"}) as resp:
            assert resp.status == 200, await resp.text()
            raw = await resp.json()
        titles[source] = (
            raw["metadata"]["name"] if source is Source.LIVEPUSH_STREAM else raw.get("title", raw.get("name"))
        )
    await sim.control("POST", "reset", {"stats_only": True})
    return Seeded(native, titles)


async def settled_count(sim: Sim, vendor: str, expected: int) -> int:
    """The vendor's request count once it stops moving toward `expected`.

    A request the simulator held with latency is counted when it notices the client left, a few
    milliseconds after the gateway has already answered; this waits for those, not for the gateway.
    """
    count = await sim.vendor_requests(vendor)
    for _ in range(50):
        if count >= expected:
            break
        await asyncio.sleep(0.02)
        count = await sim.vendor_requests(vendor)
    return count


async def query_all(gw: Gateway, seeded: Seeded) -> dict[str, Any]:
    return await gw.query(QUERY, seeded.variables())


def test_worst_case_is_every_attempt_to_its_deadline_plus_every_wait() -> None:
    settings = VendorSettings.model_validate(TIGHT)
    # Three attempts, each a wait for a slot (slot_wait) then 0.2 + 0.3 s, and between them two waits of at
    # most 1.5 s (the longest Retry-After waited out, longer than the backoff's cap of 8 x 0.01 s).
    slot = settings.slot_wait
    assert worst_case_seconds(settings, idempotent=True) == pytest.approx(3 * (slot + 0.5) + 2 * 1.5)
    # A plain create is sent once: one slot's wait and one deadline, no wait between.
    assert worst_case_seconds(settings, idempotent=False) == pytest.approx(slot + 0.5)


def matrix() -> list[Any]:
    rows = []
    for fault_name in FAULTS:
        for vendor in Vendor:
            rows.append(pytest.param(vendor, fault_name, id=f"{fault_name}-{vendor.value.lower()}"))
    return rows


@pytest.mark.parametrize(("vendor", "fault_name"), matrix())
async def test_one_failing_vendor_leaves_the_others_whole(
    sim: Sim,
    make_gateway: Callable[..., Any],
    settings_for: Callable[..., Settings],
    vendor: Vendor,
    fault_name: str,
) -> None:
    fault = FAULTS[fault_name]
    seeded = await seed_one_of_each(sim)
    settings = tight(settings_for)
    failing = settings[SIM_VENDOR[vendor]]
    reads = reads_per_query(vendor)
    attempts_per_read = 1 + failing.retries if fault.retried else 1
    expected_requests = reads * attempts_per_read
    knobs = dict(fault.knobs)
    if "error_status" in knobs:
        # Exactly enough failures for every attempt the settings allow: one attempt more than allowed
        # would be answered, and the field would not be null.
        knobs["error_burst"] = expected_requests

    async with make_gateway(**settings) as gw:
        await sim.control("POST", "faults", {SIM_VENDOR[vendor]: knobs})
        body = await query_all(gw, seeded)
        requests = await settled_count(sim, SIM_VENDOR[vendor], expected_requests)
        await sim.control("POST", "faults", {SIM_VENDOR[vendor]: {}})

    failing_sources = [s for s in Source if SOURCE_VENDOR[s] is vendor]
    data = body["data"]
    for source in Source:
        if source in failing_sources:
            assert data[ALIASES[source]] is None, body
        else:
            assert data[ALIASES[source]] == seeded.expected(source), body

    errors = sorted(body["errors"], key=lambda e: e["path"])
    assert [e["path"] for e in errors] == sorted([ALIASES[s]] for s in failing_sources)
    for error in errors:
        ext = error["extensions"]
        assert ext["code"] == fault.code, error
        assert ext["vendor"] == vendor.value
        assert ext["retryable"] is fault.retryable
        if fault.retry_after is not None:
            assert ext["retryAfter"] == fault.retry_after
        # None of these faults is the breaker's doing.
        assert "circuit" not in ext

    # The vendor saw exactly what the settings allow, and never more than 1 + retries per read.
    assert requests == expected_requests
    assert requests // reads <= 1 + failing.retries
    # The other vendors were asked once per source, as on any cold read.
    for other in Vendor:
        if other is not vendor:
            assert await sim.vendor_requests(SIM_VENDOR[other]) == reads_per_query(other)

    # The time this read could take is bounded by the settings: the attempts it made, each within one
    # deadline, and a wait between each that is no longer than the longest the settings allow.
    attempts_made = requests // reads
    deadline = failing.connect_timeout + failing.read_timeout
    longest_wait = max(failing.retry_backoff * 8, failing.retry_after_max)
    bound = attempts_made * deadline + (attempts_made - 1) * longest_wait
    assert bound <= worst_case_seconds(failing, idempotent=True) + 1e-9
    if fault.retry_after is not None and fault.retried:
        # A Retry-After is only waited out when it fits inside the longest wait the bound counts.
        assert fault.retry_after <= failing.retry_after_max
    if fault.retry_after is not None and not fault.retried:
        assert fault.retry_after > failing.retry_after_max


async def test_a_short_retry_after_is_waited_out_and_the_retry_answers(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    seeded = await seed_one_of_each(sim)
    settings = tight(settings_for)
    async with make_gateway(**settings) as gw:
        await sim.control("POST", "faults", {"streamloop": {"rate_limited": SHORT_RETRY_AFTER}})
        pending = asyncio.create_task(query_all(gw, seeded))
        # The first attempt is refused; the vendor recovers while the gateway waits out the Retry-After.
        for _ in range(100):
            if await sim.vendor_requests("streamloop") >= 1:
                break
            await asyncio.sleep(0.01)
        await sim.control("POST", "faults", {"streamloop": {}})
        body = await pending
    assert "errors" not in body, body
    assert body["data"]["streamloop"] == seeded.expected(Source.STREAMLOOP_STREAM)
    assert await sim.vendor_requests("streamloop") == 2


CREATE = """
mutation($input: CreateLiveEventInput!) {
  createLiveEvent(input: $input) {
    events { id source title }
    failures { source code retryable }
  }
}"""

#: one target per row, with the options its vendor needs
CREATE_TARGETS: dict[Source, tuple[str, dict[str, Any], str]] = {
    Source.LOOP_SESSION: ("loopSession", {"brandId": "brand-1", "maxParticipants": 5}, "/v1/sessions"),
    Source.STREAMLOOP_STREAM: (
        "streamloop",
        {"quality": "Q_1080P", "framerate": "F_30", "destinationId": "dest-1"},
        "/streams",
    ),
    Source.LIVEPUSH_STREAM: ("livepush", {"category": "SIMULCAST"}, "/streams"),
}


async def create_posts(sim: Sim, vendor: str, route: str) -> dict[int, int]:
    """POSTs to one create route, by the status they were answered with."""
    out: dict[int, int] = {}
    for row in (await sim.stats())["requests"]:
        if row["vendor"] == vendor and row["method"] == "POST" and row["route"] == route:
            out[row["status"]] = out.get(row["status"], 0) + row["count"]
    return out


@pytest.mark.parametrize(
    ("source", "idempotent"),
    [
        # Loop and Livepush take no idempotency key: sending a create twice could make two objects.
        (Source.LOOP_SESSION, False),
        (Source.LIVEPUSH_STREAM, False),
        # Streamloop de-duplicates by Idempotency-Key, so its create is retried like a read.
        (Source.STREAMLOOP_STREAM, True),
    ],
    ids=["loop-plain", "livepush-plain", "streamloop-keyed"],
)
async def test_a_create_under_a_5xx_burst_is_retried_only_with_an_idempotency_key(
    sim: Sim,
    make_gateway: Callable[..., Any],
    settings_for: Callable[..., Settings],
    source: Source,
    idempotent: bool,
) -> None:
    settings = tight(settings_for)
    vendor = SIM_VENDOR[SOURCE_VENDOR[source]]
    retries = settings[vendor].retries
    field, options, route = CREATE_TARGETS[source]
    # As many failures as there are retries: a retried create gets through on its last attempt, a
    # plain one fails on its first although the vendor would have answered the next.
    await sim.control("POST", "faults", {vendor: {"error_burst": retries, "error_status": 502}})
    async with make_gateway(**settings) as gw:
        body = await gw.query(
            CREATE,
            {
                "input": {
                    "title": "Fault matrix show",
                    "scheduledStart": "2031-05-01T18:00:00Z",
                    "scheduledEnd": "2031-05-01T19:00:00Z",
                    "hostId": "host-1",
                    "targets": {field: options},
                }
            },
        )
    assert "errors" not in body, body
    payload = body["data"]["createLiveEvent"]
    posts = await create_posts(sim, vendor, route)
    if idempotent:
        assert posts == {502: retries, 201: 1}
        assert payload["failures"] == []
        [event] = payload["events"]
        assert event["source"] == source.value and event["title"] == "Fault matrix show"
    else:
        assert posts == {502: 1}
        assert payload["events"] == []
        assert payload["failures"] == [{"source": source.value, "code": "VENDOR_UNAVAILABLE", "retryable": True}]
    assert sum(posts.values()) == (1 + retries if idempotent else 1)
