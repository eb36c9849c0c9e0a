"""`live-gateway serve --workers N`: N processes on one port, each a full gateway."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import pytest

from gateway.cli import event_loop
from tests.conftest import Sim
from tests.gateway_harness import auth_header
from tests.test_crash_recovery import gateway_env, gateway_process


async def test_workers_share_one_port_and_each_answers(sim: Sim, mongo_uri: str, mongo_db: Any) -> None:
    env = gateway_env(sim, mongo_uri, mongo_db.name)
    async with gateway_process(env, "--workers", "2") as (_, url):
        pids: set[int] = set()
        async with asyncio.timeout(30):
            while len(pids) < 2:
                # A new connection each time: the kernel spreads connections, not requests, among workers.
                async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as http:
                    async with http.get(f"{url}/healthz") as resp:
                        pids.add((await resp.json())["pid"])
                    async with http.post(
                        f"{url}/graphql", json={"query": "{ vendors { vendor } }"}, headers=auth_header()
                    ) as resp:
                        assert (await resp.json())["data"]["vendors"]
        assert len(pids) == 2


@pytest.mark.parametrize("prefer_uvloop", [True, False])
def test_serve_runs_on_uvloop_unless_told_not_to(prefer_uvloop: bool) -> None:
    uvloop = pytest.importorskip("uvloop")
    loop = event_loop(prefer_uvloop)
    try:
        assert isinstance(loop, uvloop.Loop) is prefer_uvloop
    finally:
        loop.close()
