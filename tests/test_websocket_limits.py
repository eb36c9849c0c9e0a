"""Websockets live under the same limits as HTTP: credentials in connection_init are rate-checked, each
operation counts against the caller's rate, messages are as large as a body may be, and sockets per caller
and subscriptions per socket are bounded; equal subscriptions share one computation per replica."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest

from gateway.settings import LimitSettings, Role
from tests.gateway_harness import Gateway, token_for
from tests.test_live_updates import create

QUERY = "{ vendors { vendor } }"
STATS = "subscription { liveEventStatsUpdated { total liveNow } }"
_ids = itertools.count(1)


class Socket:
    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws

    async def send(self, query: str, operation_name: str | None = None) -> str:
        operation_id = str(next(_ids))
        payload: dict[str, Any] = {"query": query}
        if operation_name:
            payload["operationName"] = operation_name
        await self.ws.send_json({"id": operation_id, "type": "subscribe", "payload": payload})
        return operation_id

    async def receive(self) -> dict[str, Any]:
        """The next message that is not a ping or a pong; a closed socket as {"type": "closed", "code": ...}."""
        async with asyncio.timeout(10):
            while True:
                message = await self.ws.receive()
                if message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING):
                    return {"type": "closed", "code": self.ws.close_code, "reason": message.extra}
                data = message.json()
                if data["type"] == "ping":
                    await self.ws.send_json({"type": "pong"})
                elif data["type"] not in ("pong", "complete"):
                    return data  # type: ignore[no-any-return]

    async def run(self, query: str, operation_name: str | None = None) -> dict[str, Any]:
        """The first answer to `query`: a `next`, or an `error`."""
        operation_id = await self.send(query, operation_name)
        while True:
            message = await self.receive()
            if message.get("id") == operation_id and message["type"] in ("next", "error"):
                return message
            if message["type"] == "closed":
                return message


@asynccontextmanager
async def socket(gw: Gateway, token: str, *, in_headers: bool = False) -> AsyncIterator[tuple[Socket, dict[str, Any]]]:
    """A socket whose credentials come in connection_init (or the upgrade headers), and what answered it."""
    headers = {"Authorization": f"Bearer {token}"} if in_headers else {}
    payload = {} if in_headers else {"Authorization": f"Bearer {token}"}
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{gw.url}/graphql", protocols=["graphql-transport-ws"], headers=headers) as ws,
    ):
        connected = Socket(ws)
        await ws.send_json({"type": "connection_init", "payload": payload})
        yield connected, await connected.receive()


async def test_credentials_in_connection_init_are_rate_checked(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway(limits=LimitSettings(rate_limit="5/minute")) as gw:
        token = token_for(Role.VIEWER, "mallory")
        async with socket(gw, token) as (ws, ack):
            assert ack["type"] == "connection_ack"
            answers = [await ws.run(QUERY) for _ in range(8)]
        kinds = [answer["type"] for answer in answers]
        # connection_init counts as a request, as the upgrade request does over HTTP
        assert kinds == ["next"] * 4 + ["error"] * 4
        error = answers[-1]["payload"][0]
        assert error["extensions"]["code"] == "RATE_LIMITED"
        assert error["extensions"]["retryAfter"] >= 1
        # A caller over its rate cannot open another socket either.
        async with socket(gw, token) as (_, refused):
            assert refused["type"] == "closed" and refused["code"] == 4429
        # Another caller is unaffected.
        async with socket(gw, token_for(Role.VIEWER, "alice")) as (ws, ack):
            assert (await ws.run(QUERY))["type"] == "next"


async def test_a_message_over_the_body_limit_closes_the_socket(make_gateway: Callable[..., Any]) -> None:
    async with (
        make_gateway(limits=LimitSettings(max_body_bytes=4096)) as gw,
        socket(gw, token_for(Role.VIEWER)) as (ws, ack),
    ):
        assert ack["type"] == "connection_ack"
        assert (await ws.run(QUERY + " " * 3000))["type"] == "next"
        answer = await ws.run(QUERY + " " * 5000)
        assert answer["type"] == "closed"
        assert answer["code"] == aiohttp.WSCloseCode.MESSAGE_TOO_BIG


async def test_sockets_per_caller_are_limited(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway(limits=LimitSettings(max_sockets_per_caller=2)) as gw:
        token = token_for(Role.VIEWER, "mallory")
        async with socket(gw, token) as (_, first), socket(gw, token, in_headers=True) as (_, second):
            assert first["type"] == second["type"] == "connection_ack"
            async with socket(gw, token) as (_, third):
                assert third["type"] == "closed" and third["code"] == 4429
                assert "2 sockets" in third["reason"]
            async with socket(gw, token_for(Role.VIEWER, "alice")) as (_, other):
                assert other["type"] == "connection_ack"
        # A closed socket gives its place back.
        async with socket(gw, token) as (_, again):
            assert again["type"] == "connection_ack"


async def test_subscriptions_per_socket_are_limited(make_gateway: Callable[..., Any]) -> None:
    async with (
        make_gateway(limits=LimitSettings(max_subscriptions_per_socket=3)) as gw,
        socket(gw, token_for(Role.VIEWER)) as (ws, _),
    ):
        for _ in range(3):
            assert (await ws.run(STATS))["type"] == "next"
        refused = await ws.run(STATS)
        assert refused["type"] == "error"
        assert refused["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert "3 operations" in refused["payload"][0]["message"]


async def test_equal_subscriptions_share_one_computation(gateway: Gateway, monkeypatch: pytest.MonkeyPatch) -> None:
    events = gateway.services.store.events
    computed = 0
    stats = events.stats

    async def counted(*args: Any, **kwargs: Any) -> Any:
        nonlocal computed
        computed += 1
        return await stats(*args, **kwargs)

    monkeypatch.setattr(events, "stats", counted)
    token = token_for(Role.VIEWER)
    async with socket(gw := gateway, token) as (one, _), socket(gw, token) as (two, _):
        for ws in (one, two, one, two, one):
            await ws.send(STATS)
        firsts = [await ws.receive() for ws in (one, one, one, two, two)]
        assert {message["type"] for message in firsts} == {"next"}
        assert computed == 1
        # A change is counted once for all five.
        await create(gateway, livepush={"category": "SIMULCAST"})
        again = [await ws.receive() for ws in (one, one, one, two, two)]
        assert {message["payload"]["data"]["liveEventStatsUpdated"]["total"] for message in again} == {1}
        assert computed == 2
        # Another filter is another computation.
        await one.send("subscription { liveEventStatsUpdated(filter: {isLive: true}) { total } }")
        assert (await one.receive())["type"] == "next"
        assert computed == 3
    # The last subscriber to leave stops the computation, and with it its place in the change feed.
    async with asyncio.timeout(5):
        while gateway.services.shared.running or gateway.services.hub.subscriber_count:  # noqa: ASYNC110
            await asyncio.sleep(0.01)


async def test_a_socket_that_never_sends_connection_init_is_closed(make_gateway: Callable[..., Any]) -> None:
    # Until connection_init names a caller, a socket counts against nobody's limits: it may be held only briefly.
    async with (
        make_gateway(limits=LimitSettings(connection_init_timeout=1.0)) as gw,
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{gw.url}/graphql", protocols=["graphql-transport-ws"]) as ws,
    ):
        closed = await Socket(ws).receive()
    assert closed["type"] == "closed"
    assert closed["code"] == 4408
