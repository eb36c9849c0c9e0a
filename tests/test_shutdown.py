"""Graceful shutdown: on SIGTERM or SIGINT the server stops accepting, closes websockets with 1001
(going away) and ends event streams, lets requests in flight finish within its bound, cuts the rest at the
bound, and exits."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import sys
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.ids import encode_global_id
from gateway.model import Source
from gateway.settings import Role
from tests.conftest import Sim
from tests.gateway_harness import auth_header, token_for
from tests.test_crash_recovery import free_port, gateway_env
from tests.test_demo import running_demo

REFRESH = "mutation($id: ID!) { refreshLiveEvent(id: $id) { event { id title } } }"
SUBSCRIBE = {"query": "subscription { liveEventUpdated { id status } }"}
#: the bound the gateway under test is given; the request held past it is held far longer
SHUTDOWN_TIMEOUT = 3.0


@contextlib.asynccontextmanager
async def serve(env: dict[str, str], log: Path, *args: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    port = free_port()
    with log.open("wb") as output:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "serve", "--port", str(port), *args,
            env=env, stdout=output, stderr=output, start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    workers = int(args[args.index("--workers") + 1]) if "--workers" in args else 1
    try:
        async with aiohttp.ClientSession() as http:
            # Ready once every worker says it listens (one answering /healthz says nothing of the others).
            for _ in range(400):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(f"{url}/healthz") as resp:
                        listening = (await asyncio.to_thread(log.read_text)).count("listening on")
                        if resp.status == 200 and listening >= workers:
                            break
                assert process.returncode is None, "the gateway exited on start; see its log"
                await asyncio.sleep(0.05)
        yield process, url
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def subscribed_socket(http: aiohttp.ClientSession, url: str, token: str) -> aiohttp.ClientWebSocketResponse:
    ws = await http.ws_connect(f"{url}/graphql", protocols=["graphql-transport-ws"])
    await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}})
    assert (await ws.receive_json())["type"] == "connection_ack"
    await ws.send_json({"type": "subscribe", "id": "1", "payload": SUBSCRIBE})
    return ws


async def close_code(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    """Read until the server closes; its close code."""
    async for _ in ws:
        pass
    return ws.close_code


async def stream_ends(response: aiohttp.ClientResponse) -> bytes:
    """Read an event stream to its end; what came last."""
    last = b""
    async for chunk in response.content.iter_any():
        last = chunk
    return last


async def refresh(url: str, global_id: str) -> dict[str, Any]:
    async with (
        aiohttp.ClientSession(headers=auth_header(Role.OPERATOR)) as http,
        http.post(f"{url}/graphql", json={"query": REFRESH, "variables": {"id": global_id}}) as resp,
    ):
        assert resp.status == 200
        body: dict[str, Any] = await resp.json()
        return body


async def held_requests(sim: Sim, vendor: str) -> int:
    stats = await sim.stats()
    return sum(row["count"] for row in stats["requests"] if row["vendor"] == vendor)


async def both_held(sim: Sim) -> None:
    """Until each vendor holds its request (a held request is counted when it arrives)."""
    for _ in range(1500):
        if await held_requests(sim, "streamloop") and await held_requests(sim, "livepush"):
            return
        await asyncio.sleep(0.02)
    pytest.fail("the requests did not reach the vendors")


async def test_sigterm_closes_sockets_lets_requests_finish_and_exits_within_the_bound(
    sim: Sim, mongo_uri: str, tmp_path: Path
) -> None:
    seeded = await sim.control("POST", "seed", {"seed": 3, "count": 1})
    streamloop_id = encode_global_id(Source.STREAMLOOP_STREAM, seeded["streamloop_stream"][0])
    livepush_id = encode_global_id(Source.LIVEPUSH_STREAM, seeded["livepush_stream"][0])
    env = gateway_env(sim, mongo_uri, f"test_shutdown_{free_port()}")
    env.update(LIVE_GATEWAY_SHUTDOWN_TIMEOUT=str(SHUTDOWN_TIMEOUT), LIVE_GATEWAY_LIVEPUSH__READ_TIMEOUT="120")
    log = tmp_path / "gateway.log"
    async with serve(env, log) as (process, url), aiohttp.ClientSession() as http:
        sockets = [await subscribed_socket(http, url, token_for(Role.VIEWER)) for _ in range(2)]
        event_stream = await http.post(
            f"{url}/graphql",
            json=SUBSCRIBE,
            headers={"Accept": "text/event-stream", **auth_header(Role.VIEWER)},
        )
        assert event_stream.status == 200
        # Both vendors hold what they are asked; Streamloop is let go once the server is stopping, within
        # the bound, and Livepush never is.
        await sim.control("POST", "faults", {"streamloop": {"hang": True}, "livepush": {"hang": True}})
        finishing = asyncio.create_task(refresh(url, streamloop_id))
        cut = asyncio.create_task(refresh(url, livepush_id))
        await both_held(sim)

        process.send_signal(signal.SIGTERM)
        closes = await asyncio.wait_for(asyncio.gather(*(close_code(ws) for ws in sockets)), timeout=30)
        assert closes == [1001, 1001]
        await asyncio.wait_for(stream_ends(event_stream), timeout=30)  # ended, not left open until the cut
        with pytest.raises(aiohttp.ClientConnectionError):  # no longer accepting
            async with http.get(f"{url}/healthz"):
                pass
        await sim.control("POST", "faults", {"streamloop": {}})
        answer = await asyncio.wait_for(finishing, timeout=30)
        assert answer["data"]["refreshLiveEvent"]["event"]["id"] == streamloop_id, answer

        # The held request cannot finish: the process exits at the bound, cutting it.
        assert await asyncio.wait_for(process.wait(), timeout=30 + SHUTDOWN_TIMEOUT) == 0
        with pytest.raises(aiohttp.ClientError):
            await cut
        await sim.control("POST", "faults", {"livepush": {}})
    text = log.read_text()
    assert f"listening on {url}" in text
    assert "closing 3 long-lived connection(s)" in text


async def test_workers_each_close_their_sockets_when_the_parent_is_stopped(
    sim: Sim, mongo_uri: str, tmp_path: Path
) -> None:
    env = gateway_env(sim, mongo_uri, f"test_shutdown_{free_port()}")
    async with (
        serve(env, tmp_path / "gateway.log", "--workers", "2") as (process, url),
        aiohttp.ClientSession() as http,
    ):
        # The kernel spreads connections over the workers: enough sockets that both hold some.
        sockets = [await subscribed_socket(http, url, token_for(Role.VIEWER)) for _ in range(6)]
        # A terminal's Ctrl-C reaches every process of the group; the parent forwards it to its workers too,
        # so each worker gets it twice and must still stop gracefully.
        os.killpg(process.pid, signal.SIGINT)
        closes = await asyncio.wait_for(asyncio.gather(*(close_code(ws) for ws in sockets)), timeout=30)
        assert closes == [1001] * 6
        assert await asyncio.wait_for(process.wait(), timeout=30) == 0
    text = (tmp_path / "gateway.log").read_text()
    assert text.count("listening on") == 2 and "Traceback" not in text


def test_the_demo_stops_within_3_seconds_with_a_socket_open(tmp_path: Path) -> None:
    async def hold_a_socket_and_stop(demo: Any) -> tuple[int | None, float]:
        async with aiohttp.ClientSession() as http:
            ws = await subscribed_socket(http, demo.url, demo.bearer)
            asked = time.monotonic()
            demo.process.send_signal(signal.SIGINT)
            code = await asyncio.wait_for(close_code(ws), timeout=30)
            await asyncio.to_thread(demo.process.wait, 30)
            return code, time.monotonic() - asked

    with running_demo(tmp_path) as demo:
        code, took = asyncio.run(hold_a_socket_and_stop(demo))
        assert demo.process.returncode == 0, demo.text
    assert code == 1001
    assert took < 3.0, f"the demo took {took:.1f} s to stop"
