"""`make bench`: the gateway against the vendors, a naive baseline and a peer, measured in one run.

Each part runs in a process of its own: the vendor simulators (a fixed latency added per vendor), the
embedded MongoDB, two gateways (one warm: reads served from its cache while fresh; one cold: every read goes
to the vendor, `FRESH_FOR=0`), the naive baseline (bench/naive.py), the peer (Hive Gateway, bench/hive.py;
only where Node.js is installed), and the load tool (autocannon, bench/load.py) for every run.

It measures vendor requests per GraphQL request (from the simulators' `/_sim/stats`), latency percentiles
and throughput at each concurrency, the vendors' own read latency at the same concurrency (the physical
limit), a fan-out create against the slowest vendor, and the peak RSS of each server under the top
concurrency. Results go to a table on stdout and to bench/results/bench.json.

    .venv/bin/python -m bench [--quick] [--rounds 3] [--duration 3] [--concurrency 1,10,50] [--latency-ms 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import hashlib
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import hive, queries
from bench.fanout import SLOWEST_TARGET, direct_creates, summary, timed_creates
from bench.fanout import TARGETS as FAN_OUT_TARGETS
from bench.load import node_binary, run_load
from bench.processes import (
    SIM_HEADERS,
    TOKEN,
    Credentials,
    PeakRss,
    Stack,
    command,
    cpu_seconds,
    free_port,
    gateway_env,
)
from bench.report import combine, render, targets
from gateway.ids import encode_global_id
from gateway.model import Source
from gateway.store.embedded import EmbeddedMongo

RESULTS = Path("bench/results")
VENDORS = ("loop", "streamloop", "livepush")
SEED = 7


class BenchError(RuntimeError):
    pass


# -- HTTP ---------------------------------------------------------------------------------------------


def http_json(method: str, url: str, body: Any = None, headers: Mapping[str, str] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method, headers={"Content-Type": "application/json"})
    for name, value in (headers or {}).items():
        request.add_header(name, value)
    with urllib.request.urlopen(request, timeout=60) as resp:
        raw = resp.read()
    return json.loads(raw) if raw else None


def graphql_body(query: str, variables: Mapping[str, Any] | None = None) -> dict[str, Any]:
    return {"query": query, "variables": dict(variables or {})}


def ask(url: str, body: Mapping[str, Any], headers: Mapping[str, str]) -> dict[str, Any]:
    """One GraphQL request that must answer every field without an error."""
    answer = http_json("POST", f"{url}/graphql", body, headers)
    if answer.get("errors") or not answer.get("data") or any(v is None for v in answer["data"].values()):
        raise BenchError(f"{url}: {json.dumps(answer)[:600]}")
    data: dict[str, Any] = answer["data"]
    return data


# -- The processes ------------------------------------------------------------------------------------


@dataclass
class Server:
    name: str
    url: str
    pid: int
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Running:
    sim_url: str
    sim_pid: int
    mongo_pid: int
    warm: Server
    cold: Server
    #: every read fresh for one second: the herd, beside the peer's response cache of one second
    fresh_1s: Server
    naive: Server
    credentials: Credentials
    peer: Server | None = None


def python_server(
    module: str, *args: str, env: Mapping[str, str], ready: str, log: Path
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    return command([sys.executable, "-m", module, *args], env=env, ready=ready, log=log)


@contextlib.contextmanager
def running(args: argparse.Namespace, logs: Path) -> Iterator[Running]:
    credentials = Credentials()
    sim_port = free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    with contextlib.ExitStack() as stack:
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        mongo = stack.enter_context(EmbeddedMongo(data_dir=data))
        simulators = stack.enter_context(
            python_server(
                "bench.simulators",
                "--port",
                str(sim_port),
                "--token",
                TOKEN,
                env=os.environ,
                ready=f"{sim_url}/_sim/health",
                log=logs / "simulators.log",
            )
        )
        servers: dict[str, Server] = {}
        settings = {
            # Everything read stays fresh for the whole run: warm means served from the cache.
            "warm": {"LIVE_GATEWAY_INDEX_REFRESH_INTERVAL": "3600"}
            | {f"LIVE_GATEWAY_{v.upper()}__FRESH_FOR": "3600" for v in VENDORS},
            # Nothing cached is fresh: every read goes to its vendor (and is written back, as a miss is).
            "cold": {f"LIVE_GATEWAY_{v.upper()}__FRESH_FOR": "0" for v in VENDORS},
            # A read stays fresh for one second, as long as the peer's response cache keeps an answer.
            "fresh_1s": {f"LIVE_GATEWAY_{v.upper()}__FRESH_FOR": "1" for v in VENDORS},
        }
        for name, overrides in settings.items():
            port = free_port()
            env = gateway_env(
                sim_url, mongo.uri, credentials, LIVE_GATEWAY_MONGODB_DATABASE=f"bench_{name}", **overrides
            )
            url = f"http://127.0.0.1:{port}"
            child = stack.enter_context(
                python_server(
                    "gateway.cli",
                    "serve",
                    "--port",
                    str(port),
                    env=env,
                    ready=f"{url}/healthz",
                    log=logs / f"gateway-{name}.log",
                )
            )
            servers[name] = Server(f"gateway ({name})", url, child.pid, credentials.headers)
        port = free_port()
        url = f"http://127.0.0.1:{port}"
        naive_env = gateway_env(sim_url, mongo.uri, credentials)
        child = stack.enter_context(
            python_server(
                "bench.naive", "--port", str(port), env=naive_env, ready=f"{url}/healthz", log=logs / "naive.log"
            )
        )
        servers["naive"] = Server("naive", url, child.pid)
        yield Running(
            sim_url=sim_url,
            sim_pid=simulators.pid,
            mongo_pid=mongo.pid or 0,
            warm=servers["warm"],
            cold=servers["cold"],
            fresh_1s=servers["fresh_1s"],
            naive=servers["naive"],
            credentials=credentials,
        )


@contextlib.contextmanager
def peer_server(run: Running, logs: Path, status: dict[str, str]) -> Iterator[Server | None]:
    """The peer, or None (with the reason in `status`) where it cannot run here."""
    if not hive.available():
        status["peer"] = "skipped: node or npm is not installed"
        yield None
        return
    try:
        supergraph = logs.parent / "peer-supergraph.graphql"
        hive.compose(run.sim_url, supergraph, logs / "peer-compose.log")
        with hive.serve(supergraph, logs / "peer.log") as peer:
            status["peer"] = "ran"
            yield Server("peer", peer.url, peer.pid)
    except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
        status["peer"] = f"failed: {exc}"
        yield None


# -- What is measured ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ids:
    """Seeded native ids per source."""

    by_source: dict[Source, list[str]]

    def native(self, source: Source, n: int) -> str:
        return self.by_source[source][n]

    def global_id(self, source: Source, n: int) -> str:
        return encode_global_id(source, self.native(source, n))

    def four(self, n: int) -> dict[str, str]:
        return {
            "call": self.global_id(Source.LOOP_CALL, n),
            "session": self.global_id(Source.LOOP_SESSION, n),
            "stream": self.global_id(Source.STREAMLOOP_STREAM, n),
            "push": self.global_id(Source.LIVEPUSH_STREAM, n),
        }

    def four_native(self, n: int) -> dict[str, str]:
        return {
            "call": self.native(Source.LOOP_CALL, n),
            "session": self.native(Source.LOOP_SESSION, n),
            "stream": self.native(Source.STREAMLOOP_STREAM, n),
            "push": self.native(Source.LIVEPUSH_STREAM, n),
        }

    def fifty(self, start: int) -> list[str]:
        """50 ids over the four sources in turn, none of them read before."""
        sources = list(Source)
        return [self.global_id(sources[i % 4], start + i // 4) for i in range(50)]


def seed(sim_url: str, count: int) -> Ids:
    seeded = http_json("POST", f"{sim_url}/_sim/seed", {"seed": SEED, "count": count})
    return Ids({source: seeded[source.value.lower()] for source in Source})


def vendor_requests(sim_url: str, send: Callable[[], object]) -> int:
    """How many vendor requests `send` caused, by the simulators' count."""
    http_json("POST", f"{sim_url}/_sim/stats/reset")
    send()
    rows = http_json("GET", f"{sim_url}/_sim/stats")["requests"]
    bad = [row for row in rows if row["status"] >= 400 or row["status"] == 0]
    if bad:
        raise BenchError(f"vendor requests failed: {bad}")
    return sum(int(row["count"]) for row in rows)


def count_requests(run: Running, ids: Ids) -> dict[str, dict[str, int | None]]:
    counts: dict[str, dict[str, int | None]] = {}

    def measure(key: str, system: str, server: Server, body: dict[str, Any]) -> None:
        counts.setdefault(key, {})[system] = vendor_requests(run.sim_url, lambda: ask(server.url, body, server.headers))

    one = graphql_body(queries.ONE_EVENT, {"id": ids.global_id(Source.LOOP_CALL, 1)})
    four = graphql_body(queries.FOUR_SOURCES, ids.four(2))
    nodes = graphql_body(queries.NODES, {"ids": ids.fifty(3)})
    listing = graphql_body(queries.LIST_100)
    # In this order: a listing caches what it lists, so the reads by id come first, each of ids never read.
    for system, server in (("gateway", run.warm), ("naive", run.naive)):
        measure("one_event_cold", system, server, one)
        measure("one_event_warm", system, server, one)
        measure("four_sources_cold", system, server, four)
        measure("nodes_50", system, server, nodes)
        measure("list_100_cold", system, server, listing)
        measure("list_100_warm", system, server, listing)
    if run.peer is not None:
        peer_one = graphql_body(queries.PEER_ONE_EVENT, {"id": ids.native(Source.LOOP_CALL, 1)})
        measure("one_event_cold", "peer", run.peer, peer_one)
        measure("one_event_warm", "peer", run.peer, peer_one)
        measure("four_sources_cold", "peer", run.peer, graphql_body(queries.PEER_FOUR_SOURCES, ids.four_native(2)))
    return counts


@dataclass
class Scenario:
    system: str
    name: str
    server: Server
    body: dict[str, Any] | None
    #: several bodies, sent in turn (distinct ids); `body` is the first
    bodies: list[dict[str, Any]] | None = None
    method: str = "POST"
    #: the path and query string (a GET carries its request there)
    target: str = "/graphql"
    extra_headers: dict[str, str] = field(default_factory=dict)
    #: sent once before the run (an APQ document's text with its hash)
    register: dict[str, Any] | None = None


def scenarios(run: Running, ids: Ids) -> list[Scenario]:
    one = graphql_body(queries.ONE_EVENT, {"id": ids.global_id(Source.LOOP_CALL, 0)})
    # Four sources cycle through distinct ids, so that concurrent requests have no vendor read to share.
    four = [graphql_body(queries.FOUR_SOURCES, ids.four(n)) for n in distinct_ids(ids)]
    listing = graphql_body(queries.LIST_100)
    out = [
        Scenario("gateway", "one_event_cold", run.cold, one),
        Scenario("gateway", "one_event_warm", run.warm, one),
        Scenario("gateway", "list_100_warm", run.warm, listing),
        Scenario("gateway", "four_sources_cold", run.cold, four[0], bodies=four),
        Scenario("naive", "one_event_cold", run.naive, one),
        Scenario("naive", "list_100_warm", run.naive, listing),
        Scenario("naive", "four_sources_cold", run.naive, four[0], bodies=four),
    ]
    if run.peer is not None:
        peer_one = graphql_body(queries.PEER_ONE_EVENT, {"id": ids.native(Source.LOOP_CALL, 0)})
        peer_four = [graphql_body(queries.PEER_FOUR_SOURCES, ids.four_native(n)) for n in distinct_ids(ids)]
        out += [
            Scenario("peer", "one_event_cold", run.peer, peer_one),
            Scenario("peer", "four_sources_cold", run.peer, peer_four[0], bodies=peer_four),
        ]
    return out + serving_scenarios(run, ids)


#: the first id a run cycles through for distinct ids (the ones before serve the other scenarios)
FIRST_DISTINCT = 8


def distinct_ids(ids: Ids) -> range:
    """The ids a distinct-id scenario cycles through: every seeded one from `FIRST_DISTINCT` on. More of
    them than the top concurrency, so that no two requests in flight at once ask for the same id (which
    in-flight deduplication would share)."""
    return range(FIRST_DISTINCT, min(len(seeded) for seeded in ids.by_source.values()))


HERD = 5


def apq_extensions(query: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": hashlib.sha256(query.encode()).hexdigest()}}


def apq_get_target(query: str, variables: Mapping[str, Any]) -> str:
    """A GET of an automatic persisted query: the hash and the variables in the URL, no text."""
    extensions = json.dumps(apq_extensions(query), separators=(",", ":"))
    params = urllib.parse.urlencode({"extensions": extensions, "variables": json.dumps(variables)})
    return f"/graphql?{params}"


def serving_scenarios(run: Running, ids: Ids) -> list[Scenario]:
    """What serving many callers with little work is for: a herd on one cold event (in-flight deduplication),
    distinct cold ids (nothing to share), a dashboard poll (the response cache) and an APQ GET."""
    herd = graphql_body(queries.ONE_EVENT, {"id": ids.global_id(Source.LOOP_CALL, HERD)})
    distinct = [graphql_body(queries.ONE_EVENT, {"id": ids.global_id(Source.LOOP_CALL, n)}) for n in distinct_ids(ids)]
    dashboard = graphql_body(queries.DASHBOARD)
    apq_variables = {"id": ids.global_id(Source.LOOP_CALL, 1)}
    out = [
        Scenario("gateway", "herd_one_cold", run.cold, herd),
        Scenario("gateway", "herd_fresh_1s", run.fresh_1s, herd),
        Scenario("gateway", "distinct_cold_ids", run.cold, distinct[0], bodies=distinct),
        Scenario("gateway", "dashboard_poll", run.warm, dashboard),
        Scenario(
            "gateway",
            "apq_get",
            run.warm,
            None,
            method="GET",
            target=apq_get_target(queries.ONE_EVENT, apq_variables),
            register=graphql_body(queries.ONE_EVENT, apq_variables) | {"extensions": apq_extensions(queries.ONE_EVENT)},
        ),
        Scenario("naive", "herd_one_cold", run.naive, herd),
        Scenario("naive", "distinct_cold_ids", run.naive, distinct[0], bodies=distinct),
        Scenario("naive", "dashboard_poll", run.naive, dashboard),
    ]
    if run.peer is not None:
        peer_herd = graphql_body(queries.PEER_ONE_EVENT, {"id": ids.native(Source.LOOP_CALL, HERD)})
        peer_distinct = [
            graphql_body(queries.PEER_ONE_EVENT, {"id": ids.native(Source.LOOP_CALL, n)}) for n in distinct_ids(ids)
        ]
        out += [
            # The herd twice: with nothing kept (its upstream in-flight deduplication only, as ours at
            # FRESH_FOR=0), and with its response cache of one second (as ours with FRESH_FOR=1). Left off
            # for distinct ids, each of which must be cold (as ours are, FRESH_FOR=0).
            Scenario("peer", "herd_one_cold", run.peer, peer_herd),
            Scenario("peer", "herd_fresh_1s", run.peer, peer_herd, extra_headers={"X-Bench-Response-Cache": "on"}),
            Scenario("peer", "distinct_cold_ids", run.peer, peer_distinct[0], bodies=peer_distinct),
        ]
    return out


def prime(scenario: Scenario) -> None:
    """Proves the answer is whole before timing it (and registers an APQ document, warms a cache)."""
    headers = {**scenario.server.headers, **scenario.extra_headers}
    if scenario.register is not None:
        ask(scenario.server.url, scenario.register, headers)
    if scenario.method == "GET":
        answer = http_json("GET", f"{scenario.server.url}{scenario.target}", headers=headers)
        if answer.get("errors") or not answer.get("data"):
            raise BenchError(f"{scenario.target}: {json.dumps(answer)[:600]}")
        return
    for body in (scenario.bodies or [scenario.body])[:2]:
        assert body is not None
        ask(scenario.server.url, body, headers)


def counted_vendor_requests(sim_url: str) -> int:
    rows = http_json("GET", f"{sim_url}/_sim/stats")["requests"]
    return sum(int(row["count"]) for row in rows)


def vendor_reads(sim_url: str, ids: Ids) -> dict[str, str]:
    """Each source's "one object" read at its vendor, called directly."""
    return {
        "loop_call": f"{sim_url}/loop/v1/live/calls/{ids.native(Source.LOOP_CALL, 0)}",
        "loop_session": f"{sim_url}/loop/v1/sessions/{ids.native(Source.LOOP_SESSION, 0)}",
        "streamloop_stream": f"{sim_url}/streamloop/v1/streams/{ids.native(Source.STREAMLOOP_STREAM, 0)}",
        "livepush_stream": f"{sim_url}/livepush/streams/{ids.native(Source.LIVEPUSH_STREAM, 0)}",
    }


class CpuUse:
    """CPU time each process (and the load tool, a child of ours) spends while the block runs."""

    def __init__(self, pids: Mapping[str, int]) -> None:
        self.pids = dict(pids)
        self.used: dict[str, float] = {}

    @staticmethod
    def _children() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return usage.ru_utime + usage.ru_stime

    def __enter__(self) -> CpuUse:
        self._start = {name: cpu_seconds(pid) for name, pid in self.pids.items()} | {"load tool": self._children()}
        return self

    def __exit__(self, *exc: object) -> None:
        end = {name: cpu_seconds(pid) for name, pid in self.pids.items()} | {"load tool": self._children()}
        self.used = {name: end[name] - self._start[name] for name in end}

    def per_request(self, requests: int, measured_share: float) -> dict[str, float]:
        """Milliseconds of CPU per answered request; the warm-up's share of the time is taken out."""
        if requests <= 0:
            return {}
        return {name: seconds * measured_share * 1000 / requests for name, seconds in self.used.items()}


def measure_load(
    run: Running, ids: Ids, args: argparse.Namespace, say: Callable[[str], None]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, int], str]:
    """Every run at every concurrency, in rounds: each round runs everything once, in the same order, so that
    the machine's slow spells fall on every system alike; a figure is the median over the rounds."""
    vendor_rounds: dict[str, dict[str, list[dict[str, Any]]]] = {}
    load_rounds: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {}
    peaks: dict[str, int] = {}
    tool = ""
    top = max(args.concurrency)
    for c in args.concurrency:
        for round_ in range(1, args.rounds + 1):
            for name, url in vendor_reads(run.sim_url, ids).items():
                stats = run_load(url, connections=c, duration=args.duration, warmup=args.warmup, headers=SIM_HEADERS)
                vendor_rounds.setdefault(name, {}).setdefault(str(c), []).append(stats.as_json())
                say(f"  [{round_}] vendor  {name:<18} c={c:<3} p50 {stats.p50:7.2f} ms  {stats.rps:8.0f} req/s")
                tool = stats.tool
            for scenario in scenarios(run, ids):
                # Also primes the warm gateway's cache, and proves the answer is whole before timing it.
                prime(scenario)
                cpu = CpuUse({"server": scenario.server.pid, "mongodb": run.mongo_pid, "simulators": run.sim_pid})
                http_json("POST", f"{run.sim_url}/_sim/stats/reset")
                with cpu, PeakRss(scenario.server.pid) as rss:
                    stats = run_load(
                        f"{scenario.server.url}{scenario.target}",
                        connections=c,
                        duration=args.duration,
                        warmup=args.warmup,
                        method=scenario.method,
                        headers={
                            "Content-Type": "application/json",
                            **scenario.server.headers,
                            **scenario.extra_headers,
                        },
                        body=None if scenario.body is None else json.dumps(scenario.body),
                        bodies=None if scenario.bodies is None else [json.dumps(b) for b in scenario.bodies],
                    )
                # Vendor requests per GraphQL request over the run and its warm-up (whose requests are
                # reckoned at the run's rate).
                sent = stats.ok + stats.rps * args.warmup
                vendor_per_request = counted_vendor_requests(run.sim_url) / sent if sent else None
                if c == top:
                    peaks[scenario.server.name] = max(peaks.get(scenario.server.name, 0), rss.peak)
                per_request = cpu.per_request(stats.ok, stats.seconds / (stats.seconds + args.warmup))
                runs = load_rounds.setdefault(scenario.system, {}).setdefault(scenario.name, {})
                runs.setdefault(str(c), []).append(
                    stats.as_json() | {"cpu_ms_per_request": per_request, "vendor_per_request": vendor_per_request}
                )
                flag = (
                    ""
                    if stats.clean
                    else f" ({stats.non2xx} non-2xx, {stats.errors} errors, {stats.timeouts} timeouts)"
                )
                say(
                    f"  [{round_}] {scenario.system:<7} {scenario.name:<18} c={c:<3} p50 {stats.p50:7.2f} ms  "
                    f"p99 {stats.p99:7.2f} ms  {stats.rps:8.0f} req/s{flag}"
                )
    vendor_calls = {name: {c: combine(rounds) for c, rounds in by_c.items()} for name, by_c in vendor_rounds.items()}
    load = {
        system: {name: {c: combine(rounds) for c, rounds in by_c.items()} for name, by_c in by_scenario.items()}
        for system, by_scenario in load_rounds.items()
    }
    return vendor_calls, load, peaks, tool


def measure_fan_out(run: Running, latency: Mapping[str, float], requests: int) -> dict[str, Any]:
    slowest = max(latency, key=lambda v: latency[v])
    target = SLOWEST_TARGET[slowest]
    stack = Stack(sim_url=run.sim_url, gateway_url=run.warm.url, gateway_pid=run.warm.pid, credentials=run.credentials)

    async def measure() -> tuple[list[float], list[float], list[float]]:
        return (
            await timed_creates(stack, requests, FAN_OUT_TARGETS),
            await timed_creates(stack, requests, {target: FAN_OUT_TARGETS[target]}),
            await direct_creates(run.sim_url, slowest, requests),
        )

    four, alone, direct = asyncio.run(measure())
    fan_out, alone_s, direct_s = summary(four), summary(alone), summary(direct)
    return {
        "requests": requests,
        "slowest_vendor": slowest,
        "fan_out_four_targets": fan_out,
        "slowest_target_alone": alone_s,
        "slowest_vendor_create": direct_s,
        "ratio_to_slowest_vendor": fan_out["p50_ms"] / direct_s["p50_ms"],
        "ratio_to_slowest_target_alone": fan_out["p50_ms"] / alone_s["p50_ms"],
    }


# -- The run ------------------------------------------------------------------------------------------


def node_version() -> str | None:
    node = node_binary()
    if node is None:
        return None
    return subprocess.run([node, "--version"], capture_output=True, text=True, check=False).stdout.strip() or None


def bench(args: argparse.Namespace, say: Callable[[str], None] = print) -> dict[str, Any]:
    latency = {"loop": args.loop_ms, "streamloop": args.streamloop_ms, "livepush": args.livepush_ms}
    output: Path = args.output
    logs = output.parent / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    status: dict[str, str] = {}
    meta: dict[str, Any] = {
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "quick": args.quick,
        "seconds_per_run": args.duration,
        "warmup_seconds": args.warmup,
        "rounds": args.rounds,
        "concurrency": list(args.concurrency),
        "vendor_latency_ms": latency,
        "seeded_per_source": args.count,
        "python": platform.python_version(),
        "node": node_version(),
        "cpus": os.cpu_count(),
        "status": status,
    }
    results: dict[str, Any] = {"meta": meta}
    load_possible = node_binary() is not None
    if load_possible:
        say("installing bench/peer's packages (autocannon, Hive Gateway, Mesh Compose) when needed")
        try:
            hive.install(logs / "npm-install.log")
        except (RuntimeError, OSError, subprocess.SubprocessError) as exc:
            status["load"] = status["peer"] = f"failed: {exc}"
            load_possible = False
    else:
        status["load"] = status["peer"] = "skipped: node is not installed"
    if args.no_peer:
        status["peer"] = "skipped: --no-peer"

    say("starting the simulators, MongoDB, two gateways and the naive baseline")
    with running(args, logs) as run:
        ids = seed(run.sim_url, args.count)
        http_json("POST", f"{run.sim_url}/_sim/faults", {v: {"latency_ms": ms} for v, ms in latency.items()})
        with contextlib.ExitStack() as stack:
            if load_possible and not args.no_peer:
                say("composing and starting the peer (Hive Gateway)")
                run.peer = stack.enter_context(peer_server(run, logs, status))
            say("counting vendor requests per GraphQL request")
            results["vendor_requests"] = count_requests(run, ids)
            if load_possible:
                say("load runs")
                vendor_calls, load, peaks, tool = measure_load(run, ids, args, say)
                results["vendor_calls"], results["load"], results["peak_rss_bytes"] = vendor_calls, load, peaks
                meta["load_tool"] = tool
                status["load"] = "ran"
        say("fan-out create")
        results["fan_out"] = measure_fan_out(run, latency, args.fan_out_requests)
    results["targets"] = [target.as_json() for target in targets(results)]
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(results, indent=2) + "\n")
    return results


def concurrency_list(text: str) -> list[int]:
    levels = sorted({int(part) for part in text.split(",") if part.strip()})
    if not levels or levels[0] < 1:
        raise argparse.ArgumentTypeError("concurrency levels are whole numbers of at least 1, e.g. 1,10,50")
    return levels


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="a smoke run: short runs at c1 and c50, fewer creates")
    parser.add_argument("--duration", type=float, help="seconds of load per run (default 3; quick 1)")
    parser.add_argument(
        "--warmup", type=float, help="seconds of load before each run, not measured (default 1; quick 0)"
    )
    parser.add_argument(
        "--rounds", type=int, help="runs of everything, interleaved; medians are kept (default 3; quick 1)"
    )
    parser.add_argument(
        "--concurrency", type=concurrency_list, help="connections per run (default 1,10,50; quick 1,50)"
    )
    parser.add_argument("--latency-ms", type=float, default=20.0, help="added latency of every vendor (default 20)")
    parser.add_argument("--loop-ms", type=float, help="Loop Live's added latency (default --latency-ms)")
    parser.add_argument("--streamloop-ms", type=float, help="Streamloop's added latency (default --latency-ms)")
    parser.add_argument("--livepush-ms", type=float, help="Livepush's added latency (default --latency-ms)")
    parser.add_argument(
        "--count",
        type=int,
        default=120,
        help="events seeded per source (at least 16; default 120: the distinct-id scenarios cycle through all but"
        " the first 8, which should be more than the top concurrency)",
    )
    parser.add_argument("--fan-out-requests", type=int, help="creates timed per fan-out series (default 40; quick 10)")
    parser.add_argument("--no-peer", action="store_true", help="leave the peer out")
    parser.add_argument("--output", type=Path, default=RESULTS / "bench.json")
    args = parser.parse_args(argv)
    quick = {"duration": 1.0, "warmup": 0.0, "rounds": 1, "concurrency": [1, 50], "fan_out_requests": 10}
    full = {"duration": 3.0, "warmup": 1.0, "rounds": 3, "concurrency": [1, 10, 50], "fan_out_requests": 40}
    defaults = quick if args.quick else full
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for vendor in VENDORS:
        if getattr(args, f"{vendor}_ms") is None:
            setattr(args, f"{vendor}_ms", args.latency_ms)
    if args.rounds < 1:
        parser.error("--rounds must be at least 1")
    if args.count < 16:
        parser.error("--count must be at least 16: the 50-id query needs 13 unread ids per source")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    results = bench(args, say=lambda line: print(line, file=sys.stderr, flush=True))
    print(render(results))
    print(f"\nwritten to {args.output}")


if __name__ == "__main__":
    main()
