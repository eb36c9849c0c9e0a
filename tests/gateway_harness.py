"""A gateway on a loopback port, wired to the simulators and MongoDB, and a GraphQL client for it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from gateway.app import SERVICES, create_app
from gateway.context import Services
from gateway.settings import Settings


@dataclass
class Gateway:
    url: str
    http: aiohttp.ClientSession
    server: TestServer

    @property
    def services(self) -> Services:
        return self.server.app[SERVICES]

    async def post(self, query: str, variables: dict[str, Any] | None = None) -> tuple[int, dict[str, Any]]:
        async with self.http.post(f"{self.url}/graphql", json={"query": query, "variables": variables or {}}) as resp:
            return resp.status, await resp.json()

    async def query(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        _, body = await self.post(query, variables)
        return body


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as http:
            yield Gateway(url=str(server.make_url("")).rstrip("/"), http=http, server=server)
    finally:
        await server.close()


def gateway_settings(settings_for: Callable[..., Settings], mongo_uri: str, **overrides: Any) -> Settings:
    """Settings for a gateway with a database of its own and no background refresher."""
    values: dict[str, Any] = {
        "mongodb_uri": mongo_uri,
        "mongodb_database": f"test_{uuid.uuid4().hex[:12]}",
        "refresher_enabled": False,
    }
    values.update(overrides)
    return settings_for(**values)
