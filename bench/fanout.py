"""Fan-out create latency against the slowest vendor and against the sum of the vendors' latencies.

Each vendor gets a fixed added latency in the simulators; one client sends `createLiveEvent` to all four
targets, one request at a time, and the ratios are measured in the same run: against the slowest vendor's
added latency, against a create sent to that vendor directly, and against the slowest target alone.

    .venv/bin/python -m bench.fanout [--requests 40] [--loop-ms 20] [--streamloop-ms 40] [--livepush-ms 60] [--keyed]

`--keyed` sends each create with an idempotency key of its own, as a client that retries safely does.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp

from bench.processes import SIM_HEADERS, Stack, stack

CREATE = """mutation($input: CreateLiveEventInput!, $key: String) {
  createLiveEvent(input: $input, idempotencyKey: $key) { operationId failures { source code } events { id } }
}"""

# The body of a direct create at each vendor, as small as its contract allows.
DIRECT_CREATES: dict[str, tuple[str, dict[str, Any]]] = {
    "loop": (
        "/loop/v1/sessions",
        {
            "host_id": "host-1",
            "brand_id": "brand-1",
            "title": "Bench show",
            "scheduled_at": "2031-05-01T18:00:00Z",
            "max_participants": 100,
        },
    ),
    "streamloop": ("/streamloop/v1/streams", {"name": "Bench show", "quality": "q_1080p", "destinationID": "dest-1"}),
    "livepush": ("/livepush/streams", {"category": "simulcast", "name": "Bench show"}),
}

#: the latency added at each vendor unless told otherwise: Livepush, the slowest, is what a fan-out waits for
DEFAULT_LATENCY_MS = {"loop": 20.0, "streamloop": 40.0, "livepush": 60.0}
#: the target each vendor's create stands for
SLOWEST_TARGET = {"loop": "loopSession", "streamloop": "streamloop", "livepush": "livepush"}

TARGETS = {
    "loopCall": {"hostUserId": "host-1"},
    "loopSession": {"brandId": "brand-1", "maxParticipants": 100},
    "streamloop": {"quality": "Q_1080P", "destinationId": "dest-1"},
    "livepush": {"category": "SIMULCAST"},
}


async def timed(requests: int, send: Callable[[aiohttp.ClientSession, int], Awaitable[object]]) -> list[float]:
    """`send` one request at a time on one session, `requests` times after three that warm connections and
    caches up, and how long each took, in milliseconds."""
    timings: list[float] = []
    async with aiohttp.ClientSession() as http:
        for n in range(requests + 3):
            started = time.perf_counter()
            await send(http, n)
            if n >= 3:
                timings.append((time.perf_counter() - started) * 1000)
    return timings


async def timed_creates(stack: Stack, requests: int, targets: dict[str, Any], *, keyed: bool = False) -> list[float]:
    run = uuid.uuid4().hex

    async def create(http: aiohttp.ClientSession, n: int) -> None:
        variables: dict[str, Any] = {
            "input": {
                "title": f"Bench show {n}",
                "hostId": "host-1",
                "scheduledStart": "2031-05-01T18:00:00Z",
                "targets": targets,
            }
        }
        if keyed:
            variables["key"] = f"bench-{run}-{n}"
        body = {"query": CREATE, "variables": variables}
        async with http.post(f"{stack.gateway_url}/graphql", json=body, headers=stack.headers) as r:
            answer = await r.json()
        payload = answer["data"]["createLiveEvent"]
        assert not payload["failures"], payload["failures"]

    return await timed(requests, create)


async def direct_creates(sim_url: str, vendor: str, requests: int) -> list[float]:
    """A create at one vendor, called directly, one at a time: what the slowest target costs by itself."""
    path, body = DIRECT_CREATES[vendor]

    async def create(http: aiohttp.ClientSession, _: int) -> None:
        async with http.post(f"{sim_url}{path}", json=body, headers=SIM_HEADERS) as resp:
            await resp.read()
            if resp.status != 201:
                raise RuntimeError(f"direct create at {vendor} answered {resp.status}")

    return await timed(requests, create)


def summary(timings: list[float]) -> dict[str, float]:
    ordered = sorted(timings)
    return {
        "p50_ms": statistics.median(ordered),
        "p90_ms": ordered[int(len(ordered) * 0.9) - 1],
        "mean_ms": statistics.fmean(ordered),
        "stdev_ms": statistics.pstdev(ordered),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    latencies = {"loop": args.loop_ms, "streamloop": args.streamloop_ms, "livepush": args.livepush_ms}
    # Loop's two targets (call and session) each make one Loop request.
    per_target = [args.loop_ms, args.loop_ms, args.streamloop_ms, args.livepush_ms]
    slowest, total = max(per_target), sum(per_target)
    slowest_vendor = max(latencies, key=lambda v: latencies[v])
    slowest_target = SLOWEST_TARGET[slowest_vendor]
    with stack() as running:
        async with aiohttp.ClientSession() as http:
            faults = {vendor: {"latency_ms": ms} for vendor, ms in latencies.items()}
            async with http.post(f"{running.sim_url}/_sim/faults", json=faults) as resp:
                resp.raise_for_status()
        fan_out = summary(await timed_creates(running, args.requests, TARGETS, keyed=args.keyed))
        alone_targets = {slowest_target: TARGETS[slowest_target]}
        alone = summary(await timed_creates(running, args.requests, alone_targets, keyed=args.keyed))
        direct = summary(await direct_creates(running.sim_url, slowest_vendor, args.requests))
    return {
        "keyed": args.keyed,
        "vendor_latency_ms": latencies,
        "slowest_vendor_ms": slowest,
        "sum_of_vendors_ms": total,
        "fan_out_four_targets": fan_out,
        "slowest_target_alone": alone,
        "slowest_vendor_create": direct,
        "ratio_fan_out_to_slowest_vendor": fan_out["p50_ms"] / slowest,
        "ratio_fan_out_to_slowest_vendor_create": fan_out["p50_ms"] / direct["p50_ms"],
        "ratio_fan_out_to_sum_of_vendors": fan_out["p50_ms"] / total,
        "ratio_fan_out_to_slowest_target_alone": fan_out["p50_ms"] / alone["p50_ms"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", type=int, default=40)
    for vendor, ms in DEFAULT_LATENCY_MS.items():
        parser.add_argument(f"--{vendor}-ms", type=float, default=ms)
    parser.add_argument("--keyed", action="store_true", help="send each create with an idempotency key of its own")
    parser.add_argument("--output", type=Path, default=Path("bench/results/fanout.json"))
    args = parser.parse_args()
    results = asyncio.run(run(args))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")
    fan, alone = results["fan_out_four_targets"], results["slowest_target_alone"]
    direct = results["slowest_vendor_create"]
    print(
        f"vendor latency (ms): {results['vendor_latency_ms']}; slowest {results['slowest_vendor_ms']:g}, "
        f"sum {results['sum_of_vendors_ms']:g}"
    )
    print(f"{'':32}{'p50 ms':>9}{'p90 ms':>9}{'stdev':>8}")
    print(f"{'fan-out, four targets':32}{fan['p50_ms']:9.1f}{fan['p90_ms']:9.1f}{fan['stdev_ms']:8.1f}")
    print(f"{'slowest target alone':32}{alone['p50_ms']:9.1f}{alone['p90_ms']:9.1f}{alone['stdev_ms']:8.1f}")
    print(f"{'its vendor, called directly':32}{direct['p50_ms']:9.1f}{direct['p90_ms']:9.1f}{direct['stdev_ms']:8.1f}")
    print(f"fan-out / slowest vendor:       {results['ratio_fan_out_to_slowest_vendor']:.2f}")
    print(f"fan-out / its create, direct:   {results['ratio_fan_out_to_slowest_vendor_create']:.2f}")
    print(f"fan-out / sum of vendors:       {results['ratio_fan_out_to_sum_of_vendors']:.2f}")
    print(f"fan-out / slowest target alone: {results['ratio_fan_out_to_slowest_target_alone']:.2f}")
    print(f"written to {args.output}")


if __name__ == "__main__":
    main()
