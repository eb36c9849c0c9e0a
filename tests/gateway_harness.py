"""A gateway on a loopback port, wired to the simulators and MongoDB, and a GraphQL client for it."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from gateway.app import create_app
from gateway.auth import issue_token
from gateway.context import Services
from gateway.keys import SERVICES
from gateway.settings import AuthSettings, Role, Settings

#: the HS256 secret of every test gateway; `token_for` signs with it
JWT_SECRET = "test-secret-of-the-gateway-under-test"


def token_for(role: Role = Role.ADMIN, subject: str = "tester", ttl: float = 3600, **claims: Any) -> str:
    return issue_token(JWT_SECRET, subject=subject, role=role, ttl=ttl, **claims)


def auth_header(role: Role = Role.ADMIN, subject: str = "tester") -> dict[str, str]:
    return {"Authorization": f"Bearer {token_for(role, subject)}"}


@dataclass
class Gateway:
    url: str
    http: aiohttp.ClientSession
    server: TestServer

    @property
    def services(self) -> Services:
        return self.server.app[SERVICES]

    async def post(
        self, query: str, variables: dict[str, Any] | None = None, *, headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, Any]]:
        body = {"query": query, "variables": variables or {}}
        async with self.http.post(f"{self.url}/graphql", json=body, headers=headers) as resp:
            return resp.status, await resp.json()

    async def query(
        self, query: str, variables: dict[str, Any] | None = None, *, headers: dict[str, str] | None = None
    ) -> dict[str, Any]:
        _, body = await self.post(query, variables, headers=headers)
        return body


@asynccontextmanager
async def running_gateway(settings: Settings) -> AsyncIterator[Gateway]:
    server = TestServer(create_app(settings), host="127.0.0.1")
    await server.start_server()
    try:
        # The client is an admin unless a test sends other credentials.
        async with aiohttp.ClientSession(headers=auth_header()) as http:
            yield Gateway(url=str(server.make_url("")).rstrip("/"), http=http, server=server)
    finally:
        await server.close()


def gateway_settings(settings_for: Callable[..., Settings], mongo_uri: str, **overrides: Any) -> Settings:
    """Settings for a gateway with a database of its own and no background refresher."""
    values: dict[str, Any] = {
        "mongodb_uri": mongo_uri,
        "mongodb_database": f"test_{uuid.uuid4().hex[:12]}",
        "refresher_enabled": False,
        "auth": AuthSettings(jwt_secret=JWT_SECRET),
    }
    values.update(overrides)
    return settings_for(**values)
