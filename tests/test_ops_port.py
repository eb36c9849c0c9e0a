"""/metrics and /readyz on a port of their own, off the public listener, when LIVE_GATEWAY_OPS_PORT is set."""

from __future__ import annotations

import uuid

import aiohttp

from tests.conftest import Sim
from tests.test_crash_recovery import free_port, gateway_env, gateway_process


async def status_of(http: aiohttp.ClientSession, url: str) -> int:
    async with http.get(url) as resp:
        return resp.status


async def test_metrics_and_readiness_leave_the_public_listener(sim: Sim, mongo_uri: str) -> None:
    ops_port = free_port()
    env = gateway_env(sim, mongo_uri, f"test_{uuid.uuid4().hex[:12]}")
    env["LIVE_GATEWAY_OPS_PORT"] = str(ops_port)
    async with gateway_process(env) as (_, url), aiohttp.ClientSession() as http:
        ops = f"http://127.0.0.1:{ops_port}"
        # The public listener no longer has them ...
        assert await status_of(http, f"{url}/metrics") == 404
        assert await status_of(http, f"{url}/readyz") == 404
        assert await status_of(http, f"{url}/healthz") == 200
        # ... the operators' one has them, and nothing else.
        async with http.get(f"{ops}/metrics") as resp:
            assert resp.status == 200 and "live_gateway_graphql_requests_total" in await resp.text()
        assert await status_of(http, f"{ops}/readyz") == 200
        assert await status_of(http, f"{ops}/healthz") == 200
        assert await status_of(http, f"{ops}/graphql") == 404
        assert await status_of(http, f"{ops}/webhooks/loop") == 404
