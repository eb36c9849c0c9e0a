"""The floor of the latency targets: what an aiohttp pass-through (bench/passthrough.py) costs over the vendors.

The c1 and fan-out targets ask the gateway to add at most 5 % or 10 % to a vendor's 20 ms. This measures
how much of that the parts themselves take, with nothing of the gateway's on top: aiohttp's server and
client, JSON in and out, and, for a create, the two MongoDB round trips a safe create cannot do without.
Each ratio is measured as `make bench` measures the gateway's, in the same run as the vendors' own figures,
in interleaved rounds.

    .venv/bin/python -m bench.floor [--rounds 3] [--duration 3] [--creates 40]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import tempfile
from pathlib import Path
from typing import Any

import aiohttp

from bench.fanout import DEFAULT_LATENCY_MS, DIRECT_CREATES, direct_creates, summary, timed
from bench.load import LoadStats, node_binary, run_load
from bench.processes import SIM_HEADERS, TOKEN, free_port
from bench.run import VENDORS, http_json, python_server, seed, vendor_reads
from gateway.store.embedded import EmbeddedMongo

#: Loop Live's create of a call, beside the creates `make bench` calls directly: the fan-out's four targets
FOUR_CREATES = [
    ["/loop/v1/live/calls", {"host_user_id": "host-1", "title": "Bench show"}],
    list(DIRECT_CREATES["loop"]),
    list(DIRECT_CREATES["streamloop"]),
    list(DIRECT_CREATES["livepush"]),
]


def paths(urls: dict[str, str], sim_url: str) -> dict[str, str]:
    return {name: url.removeprefix(sim_url) for name, url in urls.items()}


async def timed_posts(url: str, body: dict[str, Any], requests: int) -> list[float]:
    """One request at a time, as bench.fanout sends creates."""

    async def post(http: aiohttp.ClientSession, _: int) -> None:
        async with http.post(url, json=body) as resp:
            await resp.read()
            resp.raise_for_status()

    return await timed(requests, post)


def measure(args: argparse.Namespace, say: Any = print) -> dict[str, Any]:
    if node_binary() is None:
        raise SystemExit("node is not installed: the load tool (autocannon) needs it")
    sim_port, floor_port = free_port(), free_port()
    sim_url, floor_url = f"http://127.0.0.1:{sim_port}", f"http://127.0.0.1:{floor_port}"
    with contextlib.ExitStack() as stack:
        data = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        mongo = stack.enter_context(EmbeddedMongo(data_dir=data))
        logs = data / "logs"
        logs.mkdir()
        stack.enter_context(
            python_server(
                "bench.simulators",
                *("--port", str(sim_port), "--token", TOKEN),
                env=os.environ,
                ready=f"{sim_url}/_sim/health",
                log=logs / "simulators.log",
            )
        )
        stack.enter_context(
            python_server(
                "bench.passthrough",
                *("--port", str(floor_port), "--vendors", sim_url, "--token", TOKEN, "--mongodb-uri", mongo.uri),
                env=os.environ,
                ready=f"{floor_url}/health",
                log=logs / "passthrough.log",
            )
        )
        ids = seed(sim_url, 20)
        http_json("POST", f"{sim_url}/_sim/faults", {v: {"latency_ms": args.latency_ms} for v in VENDORS})
        reads = paths(vendor_reads(sim_url, ids), sim_url)
        one_body = json.dumps({"paths": [reads["loop_call"]]})
        four_body = json.dumps({"paths": list(reads.values())})
        post = {"method": "POST", "headers": {"Content-Type": "application/json"}}
        rounds: dict[str, list[LoadStats]] = {}

        def load(name: str, url: str, **options: Any) -> None:
            stats = run_load(url, connections=1, duration=args.duration, warmup=args.warmup, **options)
            if not stats.clean:
                raise SystemExit(f"{name}: not every request was answered 2xx: {stats}")
            rounds.setdefault(name, []).append(stats)
            say(f"  {name:<22} c=1  p50 {stats.p50:6.2f} ms")

        for round_ in range(1, args.rounds + 1):
            say(f"round {round_}")
            for name, path in reads.items():
                load(f"vendor {name}", f"{sim_url}{path}", headers=SIM_HEADERS)
            load("pass-through one", f"{floor_url}/read", body=one_body, **post)
            load("pass-through four", f"{floor_url}/read", body=four_body, **post)

        async def creates() -> tuple[list[float], list[float], list[float], list[float]]:
            return (
                await direct_creates(sim_url, "loop", args.creates),
                await timed_posts(f"{floor_url}/create", {"creates": FOUR_CREATES}, args.creates),
                await timed_posts(f"{floor_url}/create", {"creates": [FOUR_CREATES[1]]}, args.creates),
                await timed_posts(f"{floor_url}/forward", {"creates": FOUR_CREATES}, args.creates),
            )

        say("creates")
        direct, four, alone, forwarded = asyncio.run(creates())
        # As bench.fanout sets the vendors by default: Livepush, the slowest, is what a fan-out waits for.
        http_json("POST", f"{sim_url}/_sim/faults", {v: {"latency_ms": ms} for v, ms in DEFAULT_LATENCY_MS.items()})

        async def uneven_creates() -> tuple[list[float], list[float]]:
            return (
                await direct_creates(sim_url, "livepush", args.creates),
                await timed_posts(f"{floor_url}/create", {"creates": FOUR_CREATES}, args.creates),
            )

        say(f"creates at {DEFAULT_LATENCY_MS} ms")
        uneven_direct, uneven_four = asyncio.run(uneven_creates())

    p50 = {name: statistics.median(s.p50 for s in runs) for name, runs in rounds.items()}
    spread = {name: _spread([s.p50 for s in runs]) for name, runs in rounds.items()}
    slowest = max(p50[f"vendor {name}"] for name in reads)
    direct_s, four_s, alone_s, forwarded_s = summary(direct), summary(four), summary(alone), summary(forwarded)
    uneven_direct_s, uneven_four_s = summary(uneven_direct), summary(uneven_four)
    return {
        "latency_ms": args.latency_ms,
        "rounds": args.rounds,
        "p50_ms": p50,
        "p50_spread": spread,
        "one_event_c1": p50["pass-through one"] / p50["vendor loop_call"],
        "four_sources_c1": p50["pass-through four"] / slowest,
        "creates": {"direct": direct_s, "four_targets": four_s, "one_target": alone_s, "forwarded": forwarded_s},
        "fan_out": four_s["p50_ms"] / direct_s["p50_ms"],
        "one_target": alone_s["p50_ms"] / direct_s["p50_ms"],
        "fan_out_without_journal": forwarded_s["p50_ms"] / direct_s["p50_ms"],
        "uneven": {"latency_ms": DEFAULT_LATENCY_MS, "direct_livepush": uneven_direct_s, "four_targets": uneven_four_s},
        "fan_out_uneven": uneven_four_s["p50_ms"] / uneven_direct_s["p50_ms"],
    }


def _spread(values: list[float]) -> float:
    """How far apart the rounds lay: (largest - smallest) / smallest."""
    return (max(values) - min(values)) / min(values) if values and min(values) > 0 else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=3.0, help="seconds per run")
    parser.add_argument("--warmup", type=float, default=1.0)
    parser.add_argument("--creates", type=int, default=40)
    parser.add_argument("--latency-ms", type=float, default=20.0)
    parser.add_argument("--output", type=Path, default=Path("bench/results/floor.json"))
    args = parser.parse_args()
    results = measure(args)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    spread = max(results["p50_spread"].values())
    print(f"the floor at c1, p50 over the rounds (which lay up to {spread:.0%} apart):")
    print(f"  one event:    {results['one_event_c1']:.3f} x the vendor       (target for the gateway: <= 1.05)")
    print(f"  four sources: {results['four_sources_c1']:.3f} x the slowest vendor (target: <= 1.10)")
    print(f"  fan-out:      {results['fan_out']:.3f} x the vendor's create    (target: <= 1.10)")
    print(f"  one target:   {results['one_target']:.3f} x the vendor's create")
    print(f"  fan-out without the journal: {results['fan_out_without_journal']:.3f} x the vendor's create")
    print(f"  fan-out at 20/40/60 ms: {results['fan_out_uneven']:.3f} x Livepush's create (bench.fanout's setting)")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
