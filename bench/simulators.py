"""The vendor simulators as a benchmark runs them: `live-gateway simulate`, with Streamloop's quota raised.

Streamloop allows 600 requests a minute per credential; under load every gateway (and the peer) would
spend most of a run answering 429s, which measures the quota rather than the gateway.

    .venv/bin/python -m bench.simulators --port 8081 [--token sim-token] [--streamloop-rate-limit 10000000]
"""

from __future__ import annotations

import argparse
import logging

from aiohttp import web

from gateway.simulators import SimulatorConfig, create_app

UNLIMITED = 10_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--token", default="sim-token")
    parser.add_argument("--streamloop-rate-limit", type=int, default=UNLIMITED, help="requests a minute")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    config = SimulatorConfig(token=args.token, streamloop_rate_limit_per_minute=args.streamloop_rate_limit)
    # No access log: a line per request would cost the simulators more than answering it.
    web.run_app(create_app(config), host=args.host, port=args.port, access_log=None, print=None)


if __name__ == "__main__":
    main()
