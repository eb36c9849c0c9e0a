"""What a run's measurements mean: overhead against the vendors, the targets, and the table.

Everything here works on the results document (`bench/results/bench.json`), so it can be re-rendered
from a file: `.venv/bin/python -m bench.report bench/results/bench.json`.
"""

from __future__ import annotations

import json
import statistics
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

#: the scenarios under load, as the table names them
SCENARIOS: dict[str, str] = {
    "one_event_cold": "one event, cold",
    "one_event_warm": "one event, warm",
    "list_100_warm": "100-event list, warm",
    "four_sources_cold": "four sources, cold",
}
SYSTEMS = ("gateway", "naive", "peer")
#: the scenarios of serving many callers with little work, and how each system runs them
SERVING: dict[str, str] = {
    "herd_one_cold": "herd: one cold event",
    "herd_fresh_1s": "herd: kept 1 s",
    "distinct_cold_ids": "distinct cold ids",
    "dashboard_poll": "dashboard poll",
    "apq_get": "APQ GET (hash only)",
}
SERVING_NOTES = (
    "gateway: in-flight deduplication on (identical queries share one execution, vendor reads one call); the"
    " cold herd and distinct ids on the cold gateway (FRESH_FOR=0: nothing is served from a cache, so the"
    " response cache keeps nothing); the herd kept 1 s on a gateway with FRESH_FOR=1 (its cache and response"
    " cache keep a read one second); dashboard and APQ on the warm gateway with its response cache"
    " (liveEventStats kept 1 s at most).",
    "naive: no cache, no deduplication, no persisted queries (APQ not run).",
    "peer: Hive Gateway's upstream in-flight deduplication as it has by default; its response cache (1 s TTL)"
    " on the herd kept 1 s only (off for the cold herd and for distinct ids, each of which must be cold); no"
    " equivalent of the dashboard's index, nor an APQ store set up (not run).",
)
#: the vendor reads a scenario cannot do without, each the vendor's "one object" endpoint called directly:
#: the slowest of them is the physical limit (a warm read needs none)
CRITICAL_PATH: dict[str, tuple[str, ...]] = {
    "one_event_cold": ("loop_call",),
    "one_event_warm": (),
    "four_sources_cold": ("loop_call", "loop_session", "streamloop_stream", "livepush_stream"),
}
#: vendor requests per GraphQL request, as the table names them
COUNTS: dict[str, str] = {
    "one_event_cold": "one event by id, cold",
    "one_event_warm": "one event by id, warm",
    "list_100_cold": "100-event list, cold",
    "list_100_warm": "100-event list, warm",
    "nodes_50": "50 ids in one query",
    "four_sources_cold": "one event from each source, cold",
}

#: the processes whose CPU time a load run accounts for
CPU_COLUMNS = ("server", "mongodb", "simulators", "load tool")

Results = Mapping[str, Any]

_MEDIANS = ("p50", "p90", "p99", "mean", "rps", "seconds")
_SUMS = ("ok", "non2xx", "errors", "timeouts")


@dataclass(frozen=True)
class Overhead:
    """Our latency against the slowest vendor read on the critical path, measured at the same concurrency."""

    p50_ms: float
    p99_ms: float
    vendor: str | None
    vendor_p50_ms: float | None
    vendor_p99_ms: float | None
    ratio_p50: float | None


def combine(rounds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One figure from the rounds of a run: the median of each measure; counts are added up.

    `rps_spread` is how far apart the rounds' throughputs lie, against their median: the noise of the machine.
    """
    if not rounds:
        raise ValueError("no rounds to combine")
    out: dict[str, Any] = {key: statistics.median(float(r[key]) for r in rounds) for key in _MEDIANS}
    out |= {key: sum(int(r[key]) for r in rounds) for key in _SUMS}
    throughputs = [float(r["rps"]) for r in rounds]
    out |= {
        "connections": rounds[0]["connections"],
        "tool": rounds[0].get("tool"),
        "clean": all(r.get("clean", True) for r in rounds),
        "rounds": len(rounds),
        "rps_spread": (max(throughputs) - min(throughputs)) / out["rps"] if out["rps"] else None,
    }
    vendor = [float(r["vendor_per_request"]) for r in rounds if r.get("vendor_per_request") is not None]
    if vendor:
        out["vendor_per_request"] = statistics.median(vendor)
    cpu = [r["cpu_ms_per_request"] for r in rounds if r.get("cpu_ms_per_request")]
    if cpu:
        out["cpu_ms_per_request"] = {name: statistics.median(c.get(name, 0.0) for c in cpu) for name in cpu[0]}
    return out


def load_stats(results: Results, system: str, scenario: str, connections: int) -> Mapping[str, Any] | None:
    found: Mapping[str, Any] | None = results.get("load", {}).get(system, {}).get(scenario, {}).get(str(connections))
    return found


def overhead(results: Results, system: str, scenario: str, connections: int) -> Overhead | None:
    ours = load_stats(results, system, scenario, connections)
    if ours is None or scenario not in CRITICAL_PATH:
        return None
    direct = results.get("vendor_calls", {})
    measured = [
        (name, direct[name][str(connections)])
        for name in CRITICAL_PATH[scenario]
        if str(connections) in direct.get(name, {})
    ]
    if len(measured) < len(CRITICAL_PATH[scenario]):
        return None
    if not measured:
        return Overhead(ours["p50"], ours["p99"], None, None, None, None)
    name, slowest = max(measured, key=lambda item: item[1]["p50"])
    return Overhead(
        p50_ms=ours["p50"] - slowest["p50"],
        p99_ms=ours["p99"] - slowest["p99"],
        vendor=name,
        vendor_p50_ms=slowest["p50"],
        vendor_p99_ms=slowest["p99"],
        ratio_p50=ours["p50"] / slowest["p50"] if slowest["p50"] > 0 else None,
    )


@dataclass(frozen=True)
class Target:
    name: str
    value: float | None
    limit: float
    unit: str
    at_most: bool = True

    @property
    def met(self) -> bool | None:
        if self.value is None:
            return None
        return self.value <= self.limit if self.at_most else self.value >= self.limit

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"met": self.met}


def _rps(results: Results, system: str, scenario: str, connections: int) -> float | None:
    stats = load_stats(results, system, scenario, connections)
    return None if stats is None else float(stats["rps"])


def _ratio(top: float | None, bottom: float | None) -> float | None:
    return None if top is None or bottom is None or bottom == 0 else top / bottom


def _pick(value: Overhead | None, read: Callable[[Overhead], float | None]) -> float | None:
    return None if value is None else read(value)


def _gateway_peak_rss_mib(results: Results) -> float | None:
    peaks = [v for name, v in results.get("peak_rss_bytes", {}).items() if name.startswith("gateway")]
    return max(peaks) / 2**20 if peaks else None


def _vendor_per_request(results: Results, system: str, scenario: str, connections: int) -> float | None:
    stats = load_stats(results, system, scenario, connections)
    value = None if stats is None else stats.get("vendor_per_request")
    return None if value is None else float(value)


def targets(results: Results) -> list[Target]:
    """The targets of CPU per request against the peer and the baselines, each a ratio within the run."""
    levels: list[int] = list(results["meta"]["concurrency"])
    top, low = max(levels), min(levels)

    def against(scenario: str, other: str) -> float | None:
        return _ratio(_rps(results, "gateway", scenario, top), _rps(results, other, scenario, top))

    fan_out = results.get("fan_out") or {}
    return [
        Target(
            f"four sources, cold, distinct ids: throughput at c{top} / peer's",
            against("four_sources_cold", "peer"),
            1.0,
            "x",
            at_most=False,
        ),
        Target(
            f"one event, cold, distinct ids: throughput at c{top} / peer's",
            against("distinct_cold_ids", "peer"),
            1.0,
            "x",
            at_most=False,
        ),
        Target(
            f"herd on one cold event: vendor calls per request at c{top}",
            _vendor_per_request(results, "gateway", "herd_one_cold", top),
            0.1,
            "calls",
        ),
        Target(
            f"herd, each kept 1 s (the peer: its 1 s response cache): throughput at c{top} / peer's",
            against("herd_fresh_1s", "peer"),
            2.0,
            "x",
            at_most=False,
        ),
        Target(
            f"dashboard poll: throughput at c{top} / naive's",
            against("dashboard_poll", "naive"),
            5.0,
            "x",
            at_most=False,
        ),
        Target(
            f"100-event list, warm: throughput at c{top} / naive's",
            against("list_100_warm", "naive"),
            3.0,
            "x",
            at_most=False,
        ),
        Target(
            f"one event, cold: p50 / vendor at c{low}",
            _pick(overhead(results, "gateway", "one_event_cold", low), lambda o: o.ratio_p50),
            1.05,
            "x",
        ),
        Target(
            f"four sources, cold: p50 / slowest vendor at c{low}",
            _pick(overhead(results, "gateway", "four_sources_cold", low), lambda o: o.ratio_p50),
            1.10,
            "x",
        ),
        Target("fan-out to four targets: p50 / slowest vendor", fan_out.get("ratio_to_slowest_vendor"), 1.10, "x"),
        Target(f"gateway peak RSS at c{top}", _gateway_peak_rss_mib(results), 150, "MiB"),
    ]


def _num(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def _table(header: list[str], rows: Iterable[list[str]], left: int = 1) -> list[str]:
    body = [header, *rows]
    widths = [max(len(row[i]) for row in body) for i in range(len(header))]
    lines = []
    for n, row in enumerate(body):
        cells = [cell.ljust(widths[i]) if i < left else cell.rjust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
        if n == 0:
            lines.append("  ".join("-" * w for w in widths))
    return lines


def render(results: Results) -> str:
    meta = results["meta"]
    lines = [
        f"live-gateway bench ({'quick' if meta.get('quick') else 'full'} run, {meta['started_at']})",
        f"vendor latency added (ms): {meta['vendor_latency_ms']}; {meta.get('rounds', 1)} round(s) of "
        f"{meta['seconds_per_run']} s runs, each after {meta['warmup_seconds']} s of warm-up, medians over rounds; "
        f"load: {meta.get('load_tool') or 'none'}; {meta['cpus']} CPUs",
        "",
        "Vendor requests per GraphQL request",
    ]
    counts = results.get("vendor_requests", {})
    rows = [[label, *(_count(counts.get(key, {}).get(system)) for system in SYSTEMS)] for key, label in COUNTS.items()]
    lines += _table(["", *SYSTEMS], rows)

    vendor_calls = results.get("vendor_calls", {})
    if vendor_calls:
        lines += ["", "Vendor reads called directly (the physical limit), ms"]
        rows = []
        for name, by_c in vendor_calls.items():
            for c, stats in by_c.items():
                rows.append(
                    [
                        name,
                        c,
                        _num(stats["p50"], 2),
                        _num(stats["p90"], 2),
                        _num(stats["p99"], 2),
                        _num(stats["rps"], 0),
                    ]
                )
        lines += _table(["endpoint", "c", "p50", "p90", "p99", "req/s"], rows)

    load = results.get("load", {})
    if load:
        lines += ["", "Latency (ms) and throughput under closed-loop load"]
        rows = []
        for scenario, label in SCENARIOS.items():
            for system in SYSTEMS:
                for c, stats in load.get(system, {}).get(scenario, {}).items():
                    over = overhead(results, system, scenario, int(c))
                    rows.append(
                        [
                            label,
                            system,
                            c,
                            _num(stats["p50"], 2),
                            _num(stats["p90"], 2),
                            _num(stats["p99"], 2),
                            _num(stats["rps"], 0),
                            _num(_pick(over, lambda o: o.vendor_p50_ms), 2),
                            _num(_pick(over, lambda o: o.p50_ms), 2),
                            _num(_pick(over, lambda o: o.p99_ms), 2),
                            _num(_pick(over, lambda o: o.ratio_p50), 2),
                            _spread(stats.get("rps_spread")),
                            "" if stats.get("clean", True) else "errors!",
                        ]
                    )
        header = ["scenario", "system", "c", "p50", "p90", "p99", "req/s", "vendor p50", "over p50", "over p99"]
        lines += _table([*header, "x vendor", "±req/s", ""], rows, left=2)
        lines.append("over pXX: latency minus the slowest vendor read on the critical path at the same concurrency")
        lines.append("±req/s: how far apart the rounds' throughputs lie, against their median")

    if load and any(scenario in load.get(system, {}) for system in SYSTEMS for scenario in SERVING):
        lines += ["", "Serving many callers: latency (ms), throughput, vendor requests per request"]
        rows = []
        for scenario, label in SERVING.items():
            for c in (str(level) for level in meta["concurrency"]):
                naive = load.get("naive", {}).get(scenario, {}).get(c)
                peer = load.get("peer", {}).get(scenario, {}).get(c)
                for system in SYSTEMS:
                    stats = load.get(system, {}).get(scenario, {}).get(c)
                    if stats is None:
                        continue
                    rows.append(
                        [
                            label,
                            system,
                            c,
                            _num(stats["p50"], 2),
                            _num(stats["p99"], 2),
                            _num(stats["rps"], 0),
                            _num(stats.get("vendor_per_request"), 3),
                            _num(_ratio(stats["rps"], naive["rps"] if naive else None), 2),
                            _num(_ratio(stats["rps"], peer["rps"] if peer else None), 2),
                            _spread(stats.get("rps_spread")),
                            "" if stats.get("clean", True) else "errors!",
                        ]
                    )
        header = ["scenario", "system", "c", "p50", "p99", "req/s", "vendor/req", "x naive", "x peer", "±req/s", ""]
        lines += _table(header, rows, left=2)
        lines += [f"- {note}" for note in SERVING_NOTES]

    if load:
        top = str(max(meta["concurrency"]))
        rows = []
        for scenario, label in SCENARIOS.items():
            for system in SYSTEMS:
                cpu = load.get(system, {}).get(scenario, {}).get(top, {}).get("cpu_ms_per_request")
                if cpu:
                    rows.append([label, system, *(_num(cpu.get(name), 2) for name in CPU_COLUMNS)])
        if rows:
            lines += ["", f"CPU time per request at c{top}, ms (two cores are shared by all of them)"]
            lines += _table(["scenario", "system", *CPU_COLUMNS], rows, left=2)

    fan_out = results.get("fan_out")
    if fan_out:
        lines += ["", "Fan-out create (one request at a time), ms"]
        rows = [
            [
                "four targets",
                _num(fan_out["fan_out_four_targets"]["p50_ms"]),
                _num(fan_out["fan_out_four_targets"]["p90_ms"]),
            ],
            [
                "slowest target alone",
                _num(fan_out["slowest_target_alone"]["p50_ms"]),
                _num(fan_out["slowest_target_alone"]["p90_ms"]),
            ],
            [
                f"slowest vendor's create, direct ({fan_out['slowest_vendor']})",
                _num(fan_out["slowest_vendor_create"]["p50_ms"]),
                _num(fan_out["slowest_vendor_create"]["p90_ms"]),
            ],
        ]
        lines += _table(["", "p50", "p90"], rows)
        lines.append(
            f"fan-out / slowest vendor: {_num(fan_out['ratio_to_slowest_vendor'], 2)}; "
            f"fan-out / slowest target alone: {_num(fan_out['ratio_to_slowest_target_alone'], 2)}"
        )

    rss = results.get("peak_rss_bytes", {})
    if rss:
        lines += ["", "Peak RSS under the top concurrency, MiB"]
        lines += _table(["process", "MiB"], [[name, _num(value / 2**20)] for name, value in rss.items()])

    lines += ["", "Targets"]
    rows = []
    for target in results.get("targets", []):
        sign = "<=" if target["at_most"] else ">="
        met = {True: "met", False: "MISSED", None: "not measured"}[target["met"]]
        rows.append([target["name"], _num(target["value"], 2), f"{sign} {target['limit']:g} {target['unit']}", met])
    lines += _table(["target", "value", "limit", ""], rows)
    return "\n".join(lines)


def _spread(value: float | None) -> str:
    return "" if value is None else f"{value * 100:.0f}%"


def _count(value: Any) -> str:
    return "-" if value is None else str(value)


def main() -> None:
    path = Path(sys.argv[1] if len(sys.argv) > 1 else "bench/results/bench.json")
    results = json.loads(path.read_text())
    # The targets are judged again from the measurements, as the table's code judges them now.
    results["targets"] = [target.as_json() for target in targets(results)]
    print(render(results))


if __name__ == "__main__":
    main()
