"""The HTTP surface around GraphQL: health, readiness, GraphiQL, GET queries, request ids."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from gateway.settings import LivepushSettings, Settings
from tests.gateway_harness import Gateway, gateway_settings, running_gateway


async def test_healthz(gateway: Gateway) -> None:
    async with gateway.http.get(f"{gateway.url}/healthz") as resp:
        assert resp.status == 200
        assert await resp.json() == {"status": "ok", "pid": os.getpid()}


async def test_readyz_reports_mongodb_and_vendors(gateway: Gateway) -> None:
    async with gateway.http.get(f"{gateway.url}/readyz") as resp:
        assert resp.status == 200
        body = await resp.json()
    assert body["mongodb"] == "ok"
    assert body["vendors"] == {v: {"configured": True, "circuit": "closed"} for v in ("LOOP", "STREAMLOOP", "LIVEPUSH")}


async def test_readyz_shows_an_unconfigured_vendor(settings_for: Callable[..., Settings], mongo_uri: str) -> None:
    settings = gateway_settings(settings_for, mongo_uri, livepush=LivepushSettings())
    async with running_gateway(settings) as gw, gw.http.get(f"{gw.url}/readyz") as resp:
        body: dict[str, Any] = await resp.json()
    assert body["vendors"]["LIVEPUSH"] == {"configured": False, "circuit": "closed"}
    assert resp.status == 200


async def test_graphiql_in_a_browser(gateway: Gateway) -> None:
    async with gateway.http.get(f"{gateway.url}/graphql", headers={"Accept": "text/html"}) as resp:
        assert resp.status == 200
        assert "graphiql" in (await resp.text()).lower()


async def test_query_over_get_and_request_id(gateway: Gateway) -> None:
    async with gateway.http.get(
        f"{gateway.url}/graphql",
        params={"query": "{ vendors { vendor } }"},
        headers={"Accept": "application/json", "X-Request-Id": "abc123"},
    ) as resp:
        assert resp.status == 200
        assert resp.headers["X-Request-Id"] == "abc123"
        body = await resp.json()
    assert [v["vendor"] for v in body["data"]["vendors"]] == ["LOOP", "STREAMLOOP", "LIVEPUSH"]


async def test_syntax_error_has_a_code(gateway: Gateway) -> None:
    _, body = await gateway.post("{ vendors { ")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_PARSE_FAILED"
    _, body = await gateway.post("{ noSuchField }")
    assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
