"""CORS on /graphql: preflights without credentials, allowed and refused origins, credentials, error responses."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from gateway.cors import CorsPolicy
from gateway.settings import CorsSettings
from tests.gateway_harness import Gateway

APP = "https://app.example.com"
OTHER = "https://evil.example.net"
QUERY = {"query": "{ vendors { vendor } }"}


@asynccontextmanager
async def cors_gateway(
    make_gateway: Callable[..., Any], *origins: str, credentials: bool = False
) -> AsyncIterator[Gateway]:
    settings = CorsSettings(allow_origins=list(origins), allow_credentials=credentials, max_age=300)
    async with make_gateway(cors=settings) as gw:
        yield gw


async def preflight(gw: Gateway, origin: str, method: str = "POST") -> aiohttp.ClientResponse:
    # A browser sends no credentials with a preflight.
    async with (
        aiohttp.ClientSession() as anonymous,
        anonymous.options(
            f"{gw.url}/graphql",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": method,
                "Access-Control-Request-Headers": "content-type, authorization",
            },
        ) as resp,
    ):
        await resp.read()
        return resp


async def post(gw: Gateway, origin: str, session: aiohttp.ClientSession | None = None) -> aiohttp.ClientResponse:
    async with (session or gw.http).post(f"{gw.url}/graphql", json=QUERY, headers={"Origin": origin}) as resp:
        await resp.read()
        return resp


def vary(resp: aiohttp.ClientResponse) -> list[str]:
    return [token.strip() for token in resp.headers.get("Vary", "").split(",")]


def cors_headers(resp: aiohttp.ClientResponse) -> list[str]:
    return [name for name in resp.headers if name.lower().startswith("access-control-")]


async def test_a_preflight_from_an_allowed_origin_needs_no_credentials(make_gateway: Callable[..., Any]) -> None:
    async with cors_gateway(make_gateway, APP) as gw:
        resp = await preflight(gw, APP)
    assert resp.status == 204
    assert resp.headers["Access-Control-Allow-Origin"] == APP
    assert resp.headers["Access-Control-Allow-Methods"] == "GET, POST"
    allowed = {h.strip().lower() for h in resp.headers["Access-Control-Allow-Headers"].split(",")}
    assert allowed == {"content-type", "authorization", "x-api-key", "x-request-id", "idempotency-key"}
    assert resp.headers["Access-Control-Max-Age"] == "300"
    assert "Origin" in vary(resp)
    assert "Access-Control-Allow-Credentials" not in resp.headers


async def test_a_request_from_an_allowed_origin_is_marked(make_gateway: Callable[..., Any]) -> None:
    async with cors_gateway(make_gateway, APP) as gw:
        resp = await post(gw, APP)
    assert resp.status == 200
    assert resp.headers["Access-Control-Allow-Origin"] == APP
    assert "X-Request-Id" in resp.headers["Access-Control-Expose-Headers"]
    # Added beside the view's own Vary, not over it.
    assert {"Origin", "Accept"} <= set(vary(resp))
    assert "Access-Control-Allow-Credentials" not in resp.headers


async def test_another_origin_gets_no_cors_headers(make_gateway: Callable[..., Any]) -> None:
    async with cors_gateway(make_gateway, APP) as gw:
        refused = await preflight(gw, OTHER)
        answered = await post(gw, OTHER)
    assert refused.status == 403
    assert cors_headers(refused) == []
    # The server still answers; the browser keeps the answer from the page.
    assert answered.status == 200
    assert cors_headers(answered) == []
    assert "Origin" in vary(answered)


async def test_any_origin_without_credentials_is_a_wildcard(make_gateway: Callable[..., Any]) -> None:
    async with cors_gateway(make_gateway, "*") as gw:
        resp = await preflight(gw, OTHER)
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        resp = await post(gw, OTHER)
        assert resp.headers["Access-Control-Allow-Origin"] == "*"
        assert "Access-Control-Allow-Credentials" not in resp.headers


async def test_with_credentials_the_origin_is_echoed_never_a_wildcard(make_gateway: Callable[..., Any]) -> None:
    async with cors_gateway(make_gateway, "*", credentials=True) as gw:
        for resp in (await preflight(gw, OTHER), await post(gw, OTHER)):
            assert resp.headers["Access-Control-Allow-Origin"] == OTHER
            assert resp.headers["Access-Control-Allow-Credentials"] == "true"
        # Any page can claim the opaque origin "null", so it is never granted credentials.
        resp = await post(gw, "null")
        assert cors_headers(resp) == []


async def test_a_401_carries_the_cors_headers(make_gateway: Callable[..., Any]) -> None:
    async with cors_gateway(make_gateway, APP, credentials=True) as gw, aiohttp.ClientSession() as anonymous:
        resp = await post(gw, APP, session=anonymous)
    assert resp.status == 401
    assert resp.headers["Access-Control-Allow-Origin"] == APP
    assert resp.headers["Access-Control-Allow-Credentials"] == "true"
    assert "WWW-Authenticate" in resp.headers["Access-Control-Expose-Headers"]


async def test_no_cors_headers_at_all_without_configured_origins(gateway: Gateway) -> None:
    resp = await preflight(gateway, APP)
    assert resp.status == 405
    assert cors_headers(resp) == []
    resp = await post(gateway, APP)
    assert resp.status == 200
    assert cors_headers(resp) == []
    assert "Origin" not in vary(resp)


async def test_only_graphql_is_shared(make_gateway: Callable[..., Any]) -> None:
    async with (
        cors_gateway(make_gateway, "*") as gw,
        gw.http.get(f"{gw.url}/healthz", headers={"Origin": APP}) as resp,
    ):
        assert resp.status == 200
        assert cors_headers(resp) == []


async def test_websockets_from_allowed_origins_only(make_gateway: Callable[..., Any]) -> None:
    async with cors_gateway(make_gateway, APP) as gw:
        async with gw.http.ws_connect(
            f"{gw.url}/graphql", protocols=["graphql-transport-ws"], headers={"Origin": APP}
        ) as ws:
            await ws.send_json({"type": "connection_init", "payload": {}})
            assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await gw.http.ws_connect(f"{gw.url}/graphql", protocols=["graphql-transport-ws"], headers={"Origin": OTHER})
        assert refused.value.status == 403


def test_a_configured_value_that_is_not_an_origin_fails_at_start() -> None:
    with pytest.raises(ValueError, match="Invalid origin"):
        CorsPolicy(CorsSettings(allow_origins=["https://app.example.com/path"]))
