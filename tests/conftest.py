"""Shared fixtures: the simulators on a loopback port, the embedded MongoDB, vendor clients.

Everything here is a real part: the simulators answer real HTTP, the embedded server speaks the MongoDB
wire protocol, and the clients are the ones production uses.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from pymongo import AsyncMongoClient, monitoring

from gateway.model import Vendor
from gateway.settings import LivepushSettings, LoopSettings, Settings, StreamloopSettings
from gateway.simulators import SimulatorConfig, create_app
from gateway.store.embedded import EmbeddedMongo
from gateway.vendors.base import VendorClient
from gateway.vendors.registry import build_clients
from tests.gateway_harness import Gateway, gateway_settings, running_gateway

SIM_TOKEN = "sim-token"


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """The browser tests import Playwright, which only `make e2e` installs: they are collected when asked for
    (`-m e2e`), never by a run that leaves them out anyway."""
    if collection_path == Path(__file__).parent / "e2e":
        markexpr = str(config.getoption("markexpr", "") or "")
        return "e2e" not in markexpr.replace("not e2e", "")
    return None


class CommandCounter(monitoring.CommandListener):
    """The MongoDB commands a client sends, by name; only those to `database`/`collection` when given."""

    def __init__(self, database: str | None = None, collection: str | None = None) -> None:
        self.database = database
        self.collection = collection
        self.commands: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.database is not None and event.database_name != self.database:
            return
        if self.collection is not None and event.command.get(event.command_name) != self.collection:
            return
        self.commands[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


@dataclass
class Sim:
    """A running simulator server and a way to steer it through `/_sim/`."""

    url: str
    http: aiohttp.ClientSession
    app: Any

    @property
    def loop_url(self) -> str:
        return f"{self.url}/loop"

    @property
    def streamloop_url(self) -> str:
        return f"{self.url}/streamloop/v1"

    @property
    def livepush_url(self) -> str:
        return f"{self.url}/livepush"

    async def control(self, method: str, path: str, body: Any = None) -> Any:
        async with self.http.request(method, f"{self.url}/_sim/{path}", json=body) as resp:
            assert resp.status < 400, await resp.text()
            return await resp.json() if resp.content_type == "application/json" else None

    async def stats(self) -> dict[str, Any]:
        return await self.control("GET", "stats")

    async def vendor_requests(self, vendor: str | None = None) -> int:
        """Requests the vendors served since the last reset (optionally one vendor's)."""
        stats = await self.stats()
        return sum(row["count"] for row in stats["requests"] if vendor is None or row["vendor"] == vendor)


@pytest.fixture
def sim_config() -> SimulatorConfig:
    """Fast clocks so that tests see time move without waiting long."""
    return SimulatorConfig(token=SIM_TOKEN, preparing_seconds=0.05, activating_seconds=0.05)


@pytest.fixture
async def sim(sim_config: SimulatorConfig) -> AsyncIterator[Sim]:
    server = TestServer(create_app(sim_config), host="127.0.0.1")
    await server.start_server()
    async with aiohttp.ClientSession() as http:
        yield Sim(url=str(server.make_url("")).rstrip("/"), http=http, app=server.app)
    await server.close()


@pytest.fixture
def settings_for(sim: Sim):  # type: ignore[no-untyped-def]
    """Settings pointing every vendor at the simulators; keyword overrides go to the top level."""

    def build(**overrides: Any) -> Settings:
        values: dict[str, Any] = {
            "loop": LoopSettings(base_url=sim.loop_url, token=SIM_TOKEN, read_timeout=2.0),
            "streamloop": StreamloopSettings(base_url=sim.streamloop_url, token=SIM_TOKEN, read_timeout=2.0),
            "livepush": LivepushSettings(base_url=sim.livepush_url, token=SIM_TOKEN, read_timeout=2.0),
        }
        values.update(overrides)
        return Settings(_env_file=None, **values)  # type: ignore[call-arg]

    return build


@pytest.fixture
def clients(http_session: aiohttp.ClientSession, settings_for: Callable[..., Settings]) -> dict[Vendor, VendorClient]:
    """The production vendor clients, every vendor pointed at the simulators."""
    return build_clients(http_session, settings_for())


def later(hours: float = 1) -> datetime:
    """A whole-second instant `hours` from now."""
    return (datetime.now(UTC) + timedelta(hours=hours)).replace(microsecond=0)


@pytest.fixture
async def http_session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as session:
        yield session


@pytest.fixture(scope="session")
def mongo_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """MONGODB_URI when set, else the embedded server, started once per test run."""
    if uri := os.environ.get("MONGODB_URI"):
        yield uri
        return
    server = EmbeddedMongo(data_dir=Path(tmp_path_factory.mktemp("mongo")))
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture
async def mongo_db(mongo_uri: str) -> AsyncIterator[Any]:
    """A database of its own for each test, dropped afterwards."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri, tz_aware=True)
    name = f"test_{uuid.uuid4().hex[:12]}"
    try:
        yield client[name]
    finally:
        await client.drop_database(name)
        await client.close()


@pytest.fixture
async def make_gateway(settings_for: Callable[..., Settings], mongo_uri: str) -> AsyncIterator[Callable[..., Any]]:
    databases: list[str] = []

    def build(**overrides: Any) -> Any:
        settings = gateway_settings(settings_for, mongo_uri, **overrides)
        databases.append(settings.mongodb_database)
        return running_gateway(settings)

    yield build
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
    for name in databases:
        await client.drop_database(name)
    await client.close()


@pytest.fixture
async def gateway(make_gateway: Callable[..., Any]) -> AsyncIterator[Gateway]:
    async with make_gateway() as gw:
        yield gw


@pytest.fixture(scope="session")
def _span_exporter() -> Any:
    """OpenTelemetry's global tracer provider can be set once per process: one for the whole run."""
    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return exporter


@pytest.fixture
def span_exporter(_span_exporter: Any) -> Any:
    """The spans finished during this test, in memory."""
    _span_exporter.clear()
    return _span_exporter


#: GraphQL clients of the JavaScript ecosystem (graphql-sse, meros), run by node in the tests
JS_CLIENTS = Path(__file__).parent / "js_clients"


@pytest.fixture(scope="session")
def js_clients() -> Path:
    """tests/js_clients with its npm packages, installed from the npm registry on first use."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        pytest.fail("the JavaScript client tests need node and npm (https://nodejs.org)")
    wanted = json.loads((JS_CLIENTS / "package.json").read_text())["dependencies"]
    if not all((JS_CLIENTS / "node_modules" / name).is_dir() for name in wanted):
        subprocess.run([npm, "install", "--no-audit", "--no-fund", "--silent"], cwd=JS_CLIENTS, check=True, timeout=300)
    return JS_CLIENTS
