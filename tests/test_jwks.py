"""Bearer tokens signed by keys published at a JWKS URL: a key that appears there is accepted without a
restart, read again at most once per window for unknown keys, and on a schedule (a key withdrawn stops
working)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import jwt
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from gateway.settings import AuthSettings
from tests.conftest import Sim
from tests.gateway_harness import Gateway

QUERY = "{ vendors { vendor } }"


class Issuer:
    """An identity provider: RSA keys by id, the public ones served as a JWKS."""

    def __init__(self) -> None:
        self.private: dict[str, Any] = {}
        self.published: list[str] = []
        self.reads = 0

    def new_key(self, kid: str, *, publish: bool = True) -> None:
        self.private[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        if publish:
            self.published.append(kid)

    def token(self, kid: str, subject: str = "alice") -> str:
        now = int(time.time())
        claims = {"sub": subject, "role": "viewer", "iat": now, "exp": now + 600}
        return jwt.encode(claims, self.private[kid], algorithm="RS256", headers={"kid": kid})

    async def jwks(self, request: web.Request) -> web.Response:
        self.reads += 1
        keys = []
        for kid in self.published:
            jwk = json.loads(RSAAlgorithm.to_jwk(self.private[kid].public_key()))
            keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
        return web.json_response({"keys": keys})


@pytest.fixture
async def issuer() -> AsyncIterator[tuple[Issuer, str]]:
    issuing = Issuer()
    app = web.Application()
    app.router.add_get("/.well-known/jwks.json", issuing.jwks)
    server = TestServer(app, host="127.0.0.1")
    await server.start_server()
    yield issuing, str(server.make_url("/.well-known/jwks.json"))
    await server.close()


async def status_with(gateway: Gateway, token: str) -> tuple[int, dict[str, Any]]:
    return await gateway.post(QUERY, headers={"Authorization": f"Bearer {token}"})


async def test_a_key_that_appears_at_the_url_is_accepted_without_a_restart(
    make_gateway: Callable[..., Any], sim: Sim, issuer: tuple[Issuer, str]
) -> None:
    issuing, url = issuer
    issuing.new_key("2026-a")
    auth = AuthSettings(jwks_url=url, jwks_min_refetch=0)
    async with make_gateway(auth=auth) as gateway:
        assert (await status_with(gateway, issuing.token("2026-a")))[0] == 200
        issuing.new_key("2026-b", publish=False)
        status, body = await status_with(gateway, issuing.token("2026-b"))
        assert status == 401
        assert body["errors"][0]["message"] == "the bearer token is signed by an unknown key"
        issuing.published.append("2026-b")  # the provider rotates: the new key is published
        assert (await status_with(gateway, issuing.token("2026-b")))[0] == 200
        assert (await status_with(gateway, issuing.token("2026-a")))[0] == 200  # the old one still works


async def test_unknown_keys_read_the_url_at_most_once_per_window(
    make_gateway: Callable[..., Any], sim: Sim, issuer: tuple[Issuer, str]
) -> None:
    issuing, url = issuer
    issuing.new_key("known")
    issuing.new_key("forged", publish=False)
    auth = AuthSettings(jwks_url=url, jwks_min_refetch=3600)
    async with make_gateway(auth=auth) as gateway:
        at_start = issuing.reads
        statuses = await asyncio.gather(*(status_with(gateway, issuing.token("forged")) for _ in range(20)))
        assert {status for status, _ in statuses} == {401}
        # Started less than the window ago: not read again, however many tokens name unknown keys.
        assert issuing.reads == at_start


async def test_concurrent_unknown_keys_share_one_read(
    make_gateway: Callable[..., Any], sim: Sim, issuer: tuple[Issuer, str]
) -> None:
    issuing, url = issuer
    issuing.new_key("known")
    auth = AuthSettings(jwks_url=url, jwks_min_refetch=0)
    async with make_gateway(auth=auth) as gateway:
        issuing.new_key("fresh")  # published after the gateway's first read
        at_start = issuing.reads
        statuses = await asyncio.gather(*(status_with(gateway, issuing.token("fresh", f"u{i}")) for i in range(10)))
        assert {status for status, _ in statuses} == {200}
        assert issuing.reads - at_start <= 2  # the burst shares reads instead of one each


async def test_the_schedule_reads_the_url_and_a_withdrawn_key_stops_working(
    make_gateway: Callable[..., Any], sim: Sim, issuer: tuple[Issuer, str]
) -> None:
    issuing, url = issuer
    issuing.new_key("old")
    issuing.new_key("new")
    auth = AuthSettings(jwks_url=url, jwks_refresh_interval=0.05, jwks_min_refetch=3600)
    async with make_gateway(auth=auth) as gateway:
        old = issuing.token("old")
        assert (await status_with(gateway, old))[0] == 200
        issuing.published.remove("old")
        reads = issuing.reads
        async with asyncio.timeout(10):
            while issuing.reads < reads + 2:  # noqa: ASYNC110 (the schedule's reads, counted by the provider)
                await asyncio.sleep(0.02)
        assert (await status_with(gateway, old))[0] == 401
        assert (await status_with(gateway, issuing.token("new")))[0] == 200
