"""Settings reloaded on SIGHUP: API keys, the JWT secret or keys, CORS origins and limits change on a
running gateway, open connections stay open, and what changed is logged (secrets by name only)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import signal
import sys
import uuid
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from pymongo import AsyncMongoClient

from gateway.auth import hash_api_key
from gateway.ids import encode_global_id
from gateway.keys import SETTINGS
from gateway.model import Source
from gateway.reload import reload_settings
from gateway.settings import ApiKey, AuthSettings, CorsSettings, LimitSettings, Role, Settings
from tests.conftest import Sim
from tests.gateway_harness import JWT_SECRET
from tests.test_crash_recovery import free_port, gateway_env
from tests.test_read_path import seed

QUERY = "{ vendors { vendor } }"
FIRST_KEY, SECOND_KEY = "lg_first-key-of-the-dashboard", "lg_second-key-of-the-dashboard"


def api_key(name: str, key: str, role: Role = Role.VIEWER) -> ApiKey:
    return ApiKey(name=name, sha256=hash_api_key(key), role=role)


async def status_with_key(url: str, key: str) -> int:
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{url}/graphql", json={"query": QUERY}, headers={"X-API-Key": key}) as resp,
    ):
        return resp.status


@contextlib.asynccontextmanager
async def socket_with_key(url: str, key: str) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{url}/graphql", protocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": {"X-API-Key": key}})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        yield ws


async def still_open(ws: aiohttp.ClientWebSocketResponse) -> bool:
    await ws.send_json({"type": "ping"})
    return bool((await ws.receive_json(timeout=5))["type"] == "pong")


async def test_a_reload_takes_new_keys_origins_and_limits_and_keeps_sockets_open(
    make_gateway: Callable[..., Any], sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    auth = AuthSettings(jwt_secret=JWT_SECRET, api_keys=[api_key("first", FIRST_KEY)])
    async with make_gateway(auth=auth) as gateway:
        gateway_app = gateway.server.app
        assert await status_with_key(gateway.url, FIRST_KEY) == 200
        assert await status_with_key(gateway.url, SECOND_KEY) == 401
        aliased = "{ " + " ".join(f"a{i}: vendors {{ vendor }}" for i in range(4)) + " }"
        assert "errors" not in await gateway.query(aliased)
        async with socket_with_key(gateway.url, FIRST_KEY) as ws:
            current: Settings = gateway_app[SETTINGS]
            new = current.model_copy(
                update={
                    "auth": AuthSettings(jwt_secret=JWT_SECRET + "-rotated", api_keys=[api_key("second", SECOND_KEY)]),
                    "cors": CorsSettings(allow_origins=["https://dash.example"]),
                    "limits": LimitSettings(max_aliases=3, rate_limit="100/minute"),
                }
            )
            with caplog.at_level(logging.INFO, logger="gateway.reload"):
                assert reload_settings(gateway_app, read=lambda: new)
            assert await still_open(ws)  # admitted before: stays
        assert await status_with_key(gateway.url, SECOND_KEY) == 200
        assert await status_with_key(gateway.url, FIRST_KEY) == 401
        # Tokens signed with the old secret are refused, the new one's accepted.
        status, _ = await gateway.post(QUERY)
        assert status == 401
        async with gateway.http.options(
            f"{gateway.url}/graphql",
            headers={"Origin": "https://dash.example", "Access-Control-Request-Method": "POST"},
        ) as resp:
            assert resp.status == 204
        body = await gateway.query(aliased, headers={"X-API-Key": SECOND_KEY})
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    [line] = [record.getMessage() for record in caplog.records if record.getMessage().startswith("settings reloaded")]
    assert "auth.api_keys: added second (viewer); removed first (viewer)" in line
    assert "auth.jwt_secret changed" in line and JWT_SECRET not in line
    assert "cors.allow_origins: [] -> ['https://dash.example']" in line
    assert "limits.max_aliases: 30 -> 3" in line


async def test_answers_kept_before_a_reload_of_the_limits_are_not_given_again(
    make_gateway: Callable[..., Any], sim: Sim
) -> None:
    """A kept answer was made under the limits of then: once they are lowered, the same query is refused
    as it would be uncached, not given again from the response cache."""
    ids = await seed(sim, 1)
    one = {"id": encode_global_id(Source.STREAMLOOP_STREAM, ids[Source.STREAMLOOP_STREAM][0])}
    deep = "query One($id: ID!) { liveEvent(id: $id) { id freshness { stale } } }"
    async with make_gateway(changes_poll_interval=0.05) as gateway:
        await gateway.query(deep, one)  # from the vendor: not kept
        await gateway.services.store.events.settled()
        await asyncio.sleep(0.3)  # the change feed has told of the write-back
        await gateway.query(deep, one)
        assert len(gateway.services.responses) == 1
        current: Settings = gateway.server.app[SETTINGS]
        lowered = current.model_copy(update={"limits": LimitSettings(max_depth=1)})
        assert reload_settings(gateway.server.app, read=lambda: lowered)
        body = await gateway.query(deep, one)
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert "data" not in body or body["data"] is None


async def test_settings_that_do_not_hold_change_nothing(
    make_gateway: Callable[..., Any], sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    auth = AuthSettings(api_keys=[api_key("first", FIRST_KEY)])
    async with make_gateway(auth=auth) as gateway:
        current: Settings = gateway.server.app[SETTINGS]
        nobody = current.model_copy(update={"auth": AuthSettings()})  # nothing left to check credentials against
        assert not reload_settings(gateway.server.app, read=lambda: nobody)
        assert await status_with_key(gateway.url, FIRST_KEY) == 200
    assert any("settings not reloaded" in record.getMessage() for record in caplog.records)


async def test_sighup_adds_and_removes_an_api_key_on_a_running_gateway(
    sim: Sim, mongo_uri: str, tmp_path: Path
) -> None:
    database = f"test_{uuid.uuid4().hex[:12]}"
    env = gateway_env(sim, mongo_uri, database)
    env_file = tmp_path / ".env"

    def write_keys(*keys: ApiKey) -> None:
        entries = json.dumps([key.model_dump(mode="json") for key in keys])
        env_file.write_text(f"LIVE_GATEWAY_AUTH__API_KEYS='{entries}'\nLIVE_GATEWAY_LOG_FORMAT=text\n")

    write_keys(api_key("first", FIRST_KEY))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log_path = tmp_path / "gateway.log"
    with log_path.open("wb") as log_file:
        process = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "gateway.cli", "serve", "--port", str(port),
            cwd=tmp_path, env=env, stdout=log_file, stderr=log_file,
        )  # fmt: skip
        try:
            async with asyncio.timeout(30):
                while True:
                    with contextlib.suppress(aiohttp.ClientError):
                        if await status_with_key(url, FIRST_KEY) == 200:
                            break
                    assert process.returncode is None, log_path.read_text()
                    await asyncio.sleep(0.05)
            assert await status_with_key(url, SECOND_KEY) == 401
            async with socket_with_key(url, FIRST_KEY) as ws:
                write_keys(api_key("second", SECOND_KEY))
                process.send_signal(signal.SIGHUP)
                async with asyncio.timeout(10):
                    while await status_with_key(url, SECOND_KEY) != 200:  # noqa: ASYNC110 (another process)
                        await asyncio.sleep(0.05)
                assert await status_with_key(url, FIRST_KEY) == 401
                assert await still_open(ws)  # the reload dropped no connection
            assert process.returncode is None
        finally:
            process.terminate()
            await process.wait()
            mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongo_uri)
            await mongo.drop_database(database)
            await mongo.close()
    logged = log_path.read_text()
    assert "settings reloaded: auth.api_keys: added second (viewer); removed first (viewer)" in logged
    assert hash_api_key(SECOND_KEY) not in logged
