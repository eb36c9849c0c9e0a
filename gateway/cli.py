"""`live-gateway serve | demo | simulate | export-schema`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
import sys
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import aiohttp
from aiohttp import web

from gateway.settings import LivepushSettings, LoopSettings, Settings, StreamloopSettings

SUBSCRIPTION = """subscription {
  liveEventUpdated(filter: {sources: [STREAMLOOP_STREAM]}) { id title status vendorStatus isLive }
}"""

FIRST_QUERY = """{
  liveEvents(first: 10, filter: {statuses: [LIVE, SCHEDULED]}) {
    totalCount
    edges { node { id source status vendorStatus title scheduledStart isLive freshness { servedFrom ageSeconds } } }
    pageInfo { hasNextPage endCursor }
  }
  vendors { vendor configured reachable }
}"""


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="live-gateway", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the gateway (settings from LIVE_GATEWAY_* and .env)")
    serve.add_argument("--host")
    serve.add_argument("--port", type=int)

    demo = commands.add_parser("demo", help="simulators + embedded MongoDB + gateway with GraphiQL")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.add_argument("--sim-port", type=int, default=8081)
    demo.add_argument("--seed", type=int, default=7)
    demo.add_argument("--count", type=int, default=12, help="events seeded per source")

    simulate = commands.add_parser("simulate", help="serve the vendor simulators")
    simulate.add_argument("--host", default="127.0.0.1")
    simulate.add_argument("--port", type=int, default=8081)
    simulate.add_argument("--token", default="sim-token")

    export = commands.add_parser("export-schema", help="print or write the GraphQL SDL")
    export.add_argument("--output", type=Path)

    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.command == "serve":
        run_serve(args.host, args.port)
    elif args.command == "demo":
        asyncio.run(run_demo(args.host, args.port, args.sim_port, args.seed, args.count))
    elif args.command == "simulate":
        run_simulate(args.host, args.port, args.token)
    elif args.command == "export-schema":
        export_schema(args.output)


def run_serve(host: str | None, port: int | None) -> None:
    from gateway.app import create_app

    settings = Settings()
    web.run_app(create_app(settings), host=host or settings.host, port=port or settings.port)


def run_simulate(host: str, port: int, token: str) -> None:
    from gateway.simulators import SimulatorConfig, create_app

    web.run_app(create_app(SimulatorConfig(token=token)), host=host, port=port)


def export_schema(output: Path | None) -> None:
    from gateway.schema import build_schema

    sdl = build_schema().as_str() + "\n"
    if output is None:
        sys.stdout.write(sdl)
    else:
        output.write_text(sdl)


@contextlib.asynccontextmanager
async def serving(app: web.Application, host: str, port: int) -> AsyncIterator[None]:
    runner = web.AppRunner(app)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield
    finally:
        await runner.cleanup()


@contextlib.asynccontextmanager
async def mongodb_for_demo(settings: Settings) -> AsyncIterator[str]:
    """The configured MongoDB, or the embedded server under the data directory, stopped on exit."""
    if settings.mongodb_uri:
        yield settings.mongodb_uri
        return
    from gateway.store.embedded import EmbeddedMongo

    server = EmbeddedMongo(data_dir=Path(settings.data_dir) / "mongodb")
    await asyncio.to_thread(server.start)
    try:
        yield server.uri
    finally:
        await asyncio.to_thread(server.stop)


async def first_draft_stream(sim_url: str, token: str) -> str | None:
    """A seeded Streamloop stream that can be started, for the demo's live-update walk-through."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{sim_url}/streamloop/v1/streams", params={"limit": 100}, headers={"Authorization": f"Bearer {token}"}
        ) as resp,
    ):
        streams = (await resp.json())["data"]
    startable = [
        s["id"] for s in streams if s.get("state") in ("draft", "stopped", "scheduled") and s.get("destinationID")
    ]
    return startable[0] if startable else None


async def run_demo(host: str, port: int, sim_port: int, seed: int, count: int) -> None:
    from gateway.app import create_app
    from gateway.simulators import SimulatorConfig
    from gateway.simulators import create_app as create_simulators

    token = "sim-token"
    sim_url = f"http://{host}:{sim_port}"
    base = Settings()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async with (
        mongodb_for_demo(base) as mongodb_uri,
        serving(create_simulators(SimulatorConfig(token=token)), host, sim_port),
    ):
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{sim_url}/_sim/seed", json={"seed": seed, "count": count}) as resp,
        ):
            resp.raise_for_status()
        settings = base.model_copy(
            update={
                "mongodb_uri": mongodb_uri,
                # The demo follows the simulators closely, so that changes show up in seconds.
                "index_refresh_interval": min(base.index_refresh_interval, 4.0),
                "loop": LoopSettings(base_url=f"{sim_url}/loop", token=token),
                "streamloop": StreamloopSettings(base_url=f"{sim_url}/streamloop/v1", token=token),
                "livepush": LivepushSettings(base_url=f"{sim_url}/livepush", token=token),
            }
        )
        async with serving(create_app(settings), host, port):
            print(f"\nlive-gateway demo is up\n  GraphiQL:   http://{host}:{port}/graphql")
            print(f"  simulators: {sim_url} (control: {sim_url}/_sim/stats)")
            print(f"  MongoDB:    {mongodb_uri}\n\nA first query to paste into GraphiQL:\n\n{FIRST_QUERY}\n")
            stream = await first_draft_stream(sim_url, token)
            if stream:
                print("Live updates: run this subscription in a second GraphiQL tab,\n")
                print(SUBSCRIPTION)
                print("\nthen start a stream in the simulators; it appears there within seconds:\n")
                print(
                    f"  curl -X POST -H 'Authorization: Bearer {token}' "
                    f"{sim_url}/streamloop/v1/streams/{stream}/start\n"
                )
            print("Ctrl-C stops everything.", flush=True)
            await stop.wait()


if __name__ == "__main__":
    main()
