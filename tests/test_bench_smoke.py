"""The benchmark's parts that are cheap to run: its queries against both schemas, the naive baseline against
the simulators, the result aggregation and the table, and (where Node.js and bench/peer's packages are
installed) the load tool and the peer's composition."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from graphql import build_schema, parse, validate

from bench import floor, hive, queries
from bench.load import LoadStats, run_load
from bench.naive import SCHEMA as NAIVE_SCHEMA
from bench.naive import create_app as create_naive_app
from bench.passthrough import create_app as create_passthrough_app
from bench.processes import Credentials, PeakRss, cpu_seconds, gateway_env
from bench.report import combine, overhead, render, targets
from bench.run import Ids, parse_args, vendor_reads
from gateway.ids import encode_global_id
from gateway.model import Source
from gateway.schema import build_schema as build_gateway_schema
from tests.conftest import SIM_TOKEN, Sim

OURS = {
    "one event": queries.ONE_EVENT,
    "four sources": queries.FOUR_SOURCES,
    "100-event list": queries.LIST_100,
    "50 ids": queries.NODES,
}
PEERS = {"one event": queries.PEER_ONE_EVENT, "four sources": queries.PEER_FOUR_SOURCES}


def stats(p50: float, p99: float, rps: float, c: int = 1) -> dict[str, Any]:
    return LoadStats(c, 8.0, int(rps * 8), 0, 0, 0, rps, p50, p50 * 1.2, p99, p50).as_json()


def sample_results() -> dict[str, Any]:
    levels = [1, 50]
    vendor = {
        name: {"1": stats(21.0, 25.0, 47), "50": stats(24.0, 40.0, 1900, 50)}
        for name in ("loop_call", "loop_session", "streamloop_stream", "livepush_stream")
    }
    vendor["streamloop_stream"]["50"] = stats(26.0, 45.0, 1800, 50)
    return {
        "meta": {
            "started_at": "2030-01-01T00:00:00+00:00",
            "quick": True,
            "seconds_per_run": 8.0,
            "warmup_seconds": 2.0,
            "concurrency": levels,
            "vendor_latency_ms": {"loop": 20.0, "streamloop": 20.0, "livepush": 20.0},
            "load_tool": "autocannon 9.0.0",
            "cpus": 2,
        },
        "vendor_requests": {"one_event_cold": {"gateway": 1, "naive": 1, "peer": 1}, "nodes_50": {"gateway": 39}},
        "vendor_calls": vendor,
        "load": {
            "gateway": {
                "one_event_cold": {"1": stats(22.0, 30.0, 45), "50": stats(30.0, 60.0, 1500, 50)},
                "one_event_warm": {"1": stats(1.5, 4.0, 600), "50": stats(3.0, 12.0, 9000, 50)},
                "list_100_warm": {"1": stats(5.0, 8.0, 200), "50": stats(40.0, 80.0, 1200, 50)},
                "four_sources_cold": {"1": stats(23.0, 31.0, 43), "50": stats(35.0, 70.0, 1400, 50)},
            },
            "naive": {"list_100_warm": {"1": stats(30.0, 40.0, 33), "50": stats(200.0, 300.0, 250, 50)}},
            "peer": {"four_sources_cold": {"50": stats(40.0, 80.0, 1200, 50)}},
        },
        "fan_out": {
            "requests": 10,
            "slowest_vendor": "loop",
            "fan_out_four_targets": {"p50_ms": 25.0, "p90_ms": 27.0},
            "slowest_target_alone": {"p50_ms": 24.0, "p90_ms": 26.0},
            "slowest_vendor_create": {"p50_ms": 21.0, "p90_ms": 22.0},
            "ratio_to_slowest_vendor": 25.0 / 21.0,
            "ratio_to_slowest_target_alone": 25.0 / 24.0,
        },
        "peak_rss_bytes": {"gateway (warm)": 100 * 2**20},
    }


# -- The queries --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", OURS)
def test_our_queries_fit_the_gateway_and_the_naive_baseline(name: str) -> None:
    document = parse(OURS[name])
    for schema in (build_gateway_schema(), NAIVE_SCHEMA):
        assert validate(schema._schema, document) == []


# -- The naive baseline -------------------------------------------------------------------------------


async def test_naive_baseline_reads_every_id_from_its_vendor(sim: Sim, monkeypatch: pytest.MonkeyPatch) -> None:
    seeded = await sim.control("POST", "seed", {"seed": 5, "count": 4})
    for name, value in gateway_env(sim.url, "mongodb://unused", Credentials()).items():
        monkeypatch.setenv(name, value)
    four = {
        "call": encode_global_id(Source.LOOP_CALL, seeded["loop_call"][0]),
        "session": encode_global_id(Source.LOOP_SESSION, seeded["loop_session"][0]),
        "stream": encode_global_id(Source.STREAMLOOP_STREAM, seeded["streamloop_stream"][0]),
        "push": encode_global_id(Source.LIVEPUSH_STREAM, seeded["livepush_stream"][0]),
    }
    async with TestClient(TestServer(create_naive_app())) as client:

        async def ask(query: str, variables: dict[str, Any] | None = None) -> tuple[dict[str, Any], int]:
            await sim.control("POST", "stats/reset")
            resp = await client.post("/graphql", json={"query": query, "variables": variables or {}})
            answer = await resp.json()
            assert "errors" not in answer, answer
            return answer["data"], await sim.vendor_requests()

        data, sent = await ask(queries.FOUR_SOURCES, four)
        assert sent == 4
        assert [data[k]["id"] for k in four] == list(four.values())
        data, sent = await ask(queries.FOUR_SOURCES, four)
        assert sent == 4  # nothing is kept between requests
        data, sent = await ask(queries.NODES, {"ids": list(four.values()) * 2})
        assert sent == 8  # nor de-duplicated within one
        data, sent = await ask(queries.LIST_100)
        assert len(data["liveEvents"]["edges"]) == 12  # sessions, streams and Livepush streams: calls are not listed
        starts = [e["node"]["scheduledStart"] for e in data["liveEvents"]["edges"] if e["node"]["scheduledStart"]]
        assert starts == sorted(starts)


async def test_pass_through_reads_at_once_and_journals_each_create(sim: Sim, mongo_uri: str, mongo_db: Any) -> None:
    """The floor's pass-through does the least a gateway must, but all of it: every vendor read, and for a
    create one journal entry written before the vendors are called and settled once after (none when the
    creates are only forwarded)."""
    seeded = await sim.control("POST", "seed", {"seed": 5, "count": 1})
    ids = Ids({source: seeded[source.value.lower()] for source in Source})
    reads = list(floor.paths(vendor_reads(sim.url, ids), sim.url).values())
    app = create_passthrough_app(sim.url, SIM_TOKEN, mongo_uri, mongo_db.name)
    async with TestClient(TestServer(app)) as client:
        await sim.control("POST", "stats/reset")
        resp = await client.post("/read", json={"paths": reads})
        assert resp.status == 200, await resp.text()
        answers = (await resp.json())["data"]
        assert len(answers) == 4 and all(isinstance(a, dict) for a in answers)
        assert await sim.vendor_requests() == 4

        await sim.control("POST", "stats/reset")
        resp = await client.post("/create", json={"creates": floor.FOUR_CREATES})
        assert resp.status == 200, await resp.text()
        assert len((await resp.json())["data"]) == 4
        assert await sim.vendor_requests() == 4
        entries = await mongo_db["operations"].find().to_list()
        assert len(entries) == 1
        assert (entries[0]["state"], entries[0]["rev"]) == ("DONE", 2)
        assert [t["state"] for t in entries[0]["targets"].values()] == ["SUCCEEDED"] * 4

        await sim.control("POST", "stats/reset")
        resp = await client.post("/forward", json={"creates": floor.FOUR_CREATES})
        assert resp.status == 200, await resp.text()
        assert await sim.vendor_requests() == 4
        assert await mongo_db["operations"].count_documents({}) == 1  # forwarded without a journal entry


# -- Aggregation and the table ------------------------------------------------------------------------


def test_overhead_is_taken_against_the_slowest_vendor_read_at_the_same_concurrency() -> None:
    results = sample_results()
    four = overhead(results, "gateway", "four_sources_cold", 50)
    assert four is not None
    assert four.vendor == "streamloop_stream"
    assert four.p50_ms == pytest.approx(35.0 - 26.0)
    assert four.p99_ms == pytest.approx(70.0 - 45.0)
    assert four.ratio_p50 == pytest.approx(35.0 / 26.0)
    warm = overhead(results, "gateway", "one_event_warm", 50)
    assert warm is not None and warm.vendor is None and warm.p50_ms == 3.0 and warm.ratio_p50 is None
    assert overhead(results, "naive", "list_100_warm", 1) is None  # its vendor reads are listings, not measured


def test_rounds_are_combined_into_medians() -> None:
    rounds = [stats(20.0, 30.0, 100), stats(22.0, 50.0, 80), stats(21.0, 35.0, 120)]
    rounds[1]["cpu_ms_per_request"] = {"server": 3.0}
    rounds[2] |= {"non2xx": 2, "clean": False, "cpu_ms_per_request": {"server": 5.0}}
    combined = combine(rounds)
    assert (combined["p50"], combined["p99"], combined["rps"]) == (21.0, 35.0, 100.0)
    assert combined["ok"] == 8 * 300 and combined["non2xx"] == 2 and combined["clean"] is False
    assert combined["rounds"] == 3 and combined["rps_spread"] == pytest.approx(0.4)
    assert combined["cpu_ms_per_request"] == {"server": 4.0}


def test_targets_are_judged_and_rendered() -> None:
    results = sample_results()
    judged = {t.name: t for t in targets(results)}
    assert judged["four sources, cold, distinct ids: throughput at c50 / peer's"].met is True  # 1400 vs 1200
    assert judged["100-event list, warm: throughput at c50 / naive's"].value == pytest.approx(1200 / 250)
    assert judged["one event, cold: p50 / vendor at c1"].met is True  # 22 / 21
    assert judged["four sources, cold: p50 / slowest vendor at c1"].met is True  # 23 / 21
    assert judged["fan-out to four targets: p50 / slowest vendor"].met is False  # 25 / 21
    assert judged["gateway peak RSS at c50"].value == pytest.approx(100.0)
    assert judged["gateway peak RSS at c50"].met is True
    # Scenarios the sample did not run are not judged.
    assert judged["herd on one cold event: vendor calls per request at c50"].met is None
    assert judged["dashboard poll: throughput at c50 / naive's"].met is None
    results["targets"] = [t.as_json() for t in judged.values()]
    table = render(json.loads(json.dumps(results)))
    for heading in ("Vendor requests per GraphQL request", "Latency (ms)", "Fan-out create", "Peak RSS", "Targets"):
        assert heading in table
    assert "MISSED" in table and "met" in table


def test_quick_mode_is_short_and_covers_the_top_concurrency() -> None:
    quick = parse_args(["--quick"])
    assert quick.duration <= 1 and quick.rounds == 1 and quick.concurrency == [1, 50] and quick.loop_ms == 20.0
    full = parse_args(["--livepush-ms", "60"])
    assert (
        full.concurrency == [1, 10, 50] and full.rounds >= 3 and full.livepush_ms == 60.0 and full.streamloop_ms == 20.0
    )


def test_credentials_are_passed_as_the_hash_of_the_key() -> None:
    credentials = Credentials()
    entry = json.loads(credentials.env["LIVE_GATEWAY_AUTH__API_KEYS"])[0]
    assert entry == {"name": "bench", "sha256": hashlib.sha256(credentials.key.encode()).hexdigest(), "role": "admin"}
    assert credentials.headers == {"X-API-Key": credentials.key}


def test_process_accounting_reads_this_process() -> None:
    with PeakRss(os.getpid()) as rss:
        sum(range(100_000))
    assert rss.peak > 10 * 2**20
    assert cpu_seconds(os.getpid()) > 0


# -- Node.js: the load tool and the peer --------------------------------------------------------------

needs_node = pytest.mark.skipif(
    shutil.which("node") is None or not hive.installed(),
    reason="needs node and bench/peer's packages (make bench installs them)",
)


@needs_node
async def test_load_tool_reports_percentiles_and_throughput(sim: Sim) -> None:
    seeded = await sim.control("POST", "seed", {"seed": 5, "count": 1})
    url = f"{sim.url}/loop/v1/live/calls/{seeded['loop_call'][0]}"
    # A process of its own, and it blocks: run it off the event loop that serves the simulators.
    result = await asyncio.to_thread(
        run_load, url, connections=2, duration=1, warmup=0, headers={"Authorization": f"Bearer {SIM_TOKEN}"}
    )
    assert result.clean and result.ok > 10
    assert 0 < result.p50 <= result.p90 <= result.p99
    assert result.rps > 0 and result.tool.startswith("autocannon")


@needs_node
async def test_peer_queries_fit_the_composed_supergraph(sim: Sim, tmp_path: Path) -> None:
    supergraph = tmp_path / "supergraph.graphql"
    try:
        await asyncio.to_thread(hive.compose, sim.url, supergraph, tmp_path / "compose.log")
    except (RuntimeError, subprocess.SubprocessError):
        pytest.fail((tmp_path / "compose.log").read_text())
    schema = build_schema(supergraph.read_text(), assume_valid_sdl=True)
    for name, query in PEERS.items():
        assert validate(schema, parse(query)) == [], name
