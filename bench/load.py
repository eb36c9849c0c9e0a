"""Load from a process of its own: autocannon (bench/peer/load.mjs), closed loop, N connections.

autocannon (github.com/mcollina/autocannon) is maintained and released regularly, reports what a benchmark
needs (percentiles, throughput, errors, non-2xx answers) as JSON, and drives thousands of requests a second
from one Node.js process with little CPU: on a two-core machine the load tool shares the cores with what it
loads, so a heavy tool (locust, a Python client) would slow the very thing it measures. Node.js is already
needed for the peer.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PEER_DIR = Path(__file__).parent / "peer"
LOAD_SCRIPT = PEER_DIR / "load.mjs"


def node_binary() -> str | None:
    return shutil.which("node")


@dataclass(frozen=True)
class LoadStats:
    """One closed-loop run: latencies in milliseconds over the 2xx answers, and their throughput."""

    connections: int
    seconds: float
    ok: int
    non2xx: int
    errors: int
    timeouts: int
    rps: float
    p50: float
    p90: float
    p99: float
    mean: float
    tool: str = "autocannon"

    @classmethod
    def from_tool(cls, out: Mapping[str, Any]) -> LoadStats:
        latency = out["latency_ms"]
        return cls(
            connections=int(out["connections"]),
            seconds=float(out["seconds"]),
            ok=int(out["ok"]),
            non2xx=int(out["non2xx"]),
            errors=int(out["errors"]),
            timeouts=int(out["timeouts"]),
            rps=float(out["rps"]),
            p50=float(latency["p50"] or 0.0),
            p90=float(latency["p90"] or 0.0),
            p99=float(latency["p99"] or 0.0),
            mean=float(latency["mean"] or 0.0),
            tool=str(out.get("tool", "autocannon")),
        )

    @property
    def clean(self) -> bool:
        """Every request answered 2xx: a run with failures measures the failures."""
        return self.ok > 0 and self.non2xx == 0 and self.errors == 0 and self.timeouts == 0

    def as_json(self) -> dict[str, Any]:
        return asdict(self) | {"clean": self.clean}


def run_load(
    url: str,
    *,
    connections: int,
    duration: float,
    warmup: float,
    method: str = "GET",
    headers: Mapping[str, str] | None = None,
    body: str | None = None,
    bodies: list[str] | None = None,
) -> LoadStats:
    node = node_binary()
    if node is None:
        raise RuntimeError("node is not installed: the load tool (autocannon) needs it")
    spec = {
        "url": url,
        "method": method,
        "headers": dict(headers or {}),
        "body": body,
        "bodies": bodies,
        "connections": connections,
        # autocannon counts whole seconds
        "duration": max(1, round(duration)),
        "warmup": max(0, round(warmup)),
    }
    done = subprocess.run(
        [node, str(LOAD_SCRIPT), json.dumps(spec)],
        cwd=PEER_DIR,
        capture_output=True,
        text=True,
        check=False,
        timeout=duration + warmup + 120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the load tool failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return LoadStats.from_tool(json.loads(done.stdout.strip().splitlines()[-1]))
