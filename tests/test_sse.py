"""GraphQL over server-sent events (graphql-sse, distinct connections mode) on /graphql: by raw HTTP, and
through the graphql-sse npm client run by node. Credentials, limits and error codes are those of HTTP and
the websocket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from gateway.keys import CALLER_SOCKETS
from gateway.settings import AuthSettings, LimitSettings, Role
from tests.conftest import Sim
from tests.gateway_harness import JWT_SECRET, Gateway, auth_header, token_for
from tests.test_live_updates import STATS, UPDATED, create

SSE = {"Accept": "text/event-stream"}


async def events(response: aiohttp.ClientResponse) -> AsyncIterator[tuple[str, str]]:
    """(event, data) of each event of a text/event-stream, comments (heartbeats) left out."""
    event, data = "", []
    async for raw in response.content:
        line = raw.decode().rstrip("\r\n")
        if not line:
            if event or data:
                yield event or "message", "\n".join(data)
            event, data = "", []
        elif not line.startswith(":"):
            field, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if field == "event":
                event = value
            elif field == "data":
                data.append(value)


async def all_events(response: aiohttp.ClientResponse) -> list[tuple[str, Any]]:
    async with asyncio.timeout(10):
        return [(event, json.loads(data) if data else None) async for event, data in events(response)]


@asynccontextmanager
async def sse(
    gateway: Gateway, query: str, variables: dict[str, Any] | None = None, *, headers: dict[str, str] | None = None
) -> AsyncIterator[aiohttp.ClientResponse]:
    body = {"query": query, "variables": variables or {}}
    async with gateway.http.post(f"{gateway.url}/graphql", json=body, headers={**SSE, **(headers or {})}) as resp:
        yield resp


async def subscribers_become(gateway: Gateway, count: int) -> None:
    async with asyncio.timeout(5):
        while gateway.services.hub.subscriber_count != count:  # noqa: ASYNC110 (the gateway's own state)
            await asyncio.sleep(0.01)


async def test_a_query_is_one_next_event_then_complete(gateway: Gateway, sim: Sim) -> None:
    async with sse(gateway, "{ liveEvents(first: 5) { totalCount } }") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"] == "text/event-stream"
        assert resp.headers["Cache-Control"] == "no-cache, no-transform"
        assert resp.headers["X-Request-Id"]
        received = await all_events(resp)
    assert received == [("next", {"data": {"liveEvents": {"totalCount": 0}}}), ("complete", None)]


async def test_a_subscription_gets_an_update_after_it_starts_and_ends_when_the_client_leaves(
    make_gateway: Callable[..., Any], sim: Sim
) -> None:
    # No heartbeat during the test: the gateway sees the client leave by looking at the connection.
    async with make_gateway(sse_heartbeat_interval=3600) as gateway:
        stream = (await create(gateway, streamloop={"destinationId": "d"}))["STREAMLOOP_STREAM"]["id"]
        async with sse(gateway, UPDATED, {"filter": {"sources": ["STREAMLOOP_STREAM"]}}) as resp:
            assert resp.status == 200
            await subscribers_become(gateway, 1)
            await gateway.query(f'mutation {{ startLiveEvent(id: "{stream}") {{ event {{ id }} }} }}')
            async with asyncio.timeout(10):
                event, data = await anext(events(resp))
            assert event == "next"
            assert json.loads(data) == {
                "data": {
                    "liveEventUpdated": {
                        "id": stream,
                        "source": "STREAMLOOP_STREAM",
                        "status": "STARTING",
                        "isLive": True,
                    }
                }
            }
        # The client closed the stream: the subscription ends, and with it the stream's place.
        await subscribers_become(gateway, 0)


async def test_no_credentials_is_refused_as_over_http(gateway: Gateway) -> None:
    body = {"query": UPDATED}
    async with aiohttp.ClientSession() as anonymous:
        async with anonymous.post(f"{gateway.url}/graphql", json=body, headers=SSE) as resp:
            assert resp.status == 401
            assert resp.headers["WWW-Authenticate"].startswith("Bearer")
            error = (await resp.json())["errors"][0]
        bad = {**SSE, "Authorization": "Bearer not-a-token"}
        async with anonymous.post(f"{gateway.url}/graphql", json=body, headers=bad) as resp:
            assert resp.status == 401
            assert (await resp.json())["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_viewer_may_subscribe_but_not_mutate(gateway: Gateway, sim: Sim) -> None:
    viewer = auth_header(Role.VIEWER, "watcher")
    mutation = 'mutation { startLiveEvent(id: "TE9PUF9DQUxMOng=") { event { id } } }'
    async with sse(gateway, mutation, headers=viewer) as resp:
        [(event, result), complete] = await all_events(resp)
    assert event == "next" and complete == ("complete", None)
    assert [error["extensions"]["code"] for error in result["errors"]] == ["FORBIDDEN"]


async def test_the_rate_limit_counts_streams_too(make_gateway: Callable[..., Any], sim: Sim) -> None:
    async with make_gateway(limits=LimitSettings(rate_limit="2/minute")) as gateway:
        assert (await gateway.post("{ vendors { vendor } }"))[0] == 200
        async with sse(gateway, "{ vendors { vendor } }") as resp:
            assert resp.status == 200
            await all_events(resp)
        async with sse(gateway, "{ vendors { vendor } }") as resp:
            assert resp.status == 429
            assert int(resp.headers["Retry-After"]) >= 1
            assert (await resp.json())["errors"][0]["extensions"]["code"] == "RATE_LIMITED"


async def test_a_body_over_the_size_limit_is_413(make_gateway: Callable[..., Any], sim: Sim) -> None:
    async with (
        make_gateway(limits=LimitSettings(max_body_bytes=2048)) as gateway,
        sse(gateway, "{ vendors { vendor } }", {"pad": "x" * 4096}) as resp,
    ):
        assert resp.status == 413
        assert (await resp.json())["errors"][0]["extensions"]["code"] == "PAYLOAD_TOO_LARGE"


BAD_REQUESTS = {
    "syntax": ("{ liveEvents(first: 1) { totalCount }", None),
    "unknown field": ("{ nothingHere }", None),
    "too deep": ("{ liveEvents { edges { node { recordings { url } } } } }", None),
    "too many aliases": ("{ " + " ".join(f"a{i}: vendors {{ vendor }}" for i in range(5)) + " }", None),
    "costly": ("{ liveEvents(first: 1000) { edges { node { id title } } } }", None),
    "bad variable": ("query($n: Int) { liveEvents(first: $n) { totalCount } }", {"n": "many"}),
    "unknown operation": ("query A { vendors { vendor } }", None),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
async def test_errors_carry_the_codes_they_carry_over_http(
    make_gateway: Callable[..., Any], sim: Sim, case: str
) -> None:
    query, variables = BAD_REQUESTS[case]
    limits = LimitSettings(max_depth=3, max_aliases=3, max_cost=500)
    async with make_gateway(limits=limits) as gateway:
        body: dict[str, Any] = {"query": query, "variables": variables or {}}
        if case == "unknown operation":
            body["operationName"] = "B"
        async with gateway.http.post(f"{gateway.url}/graphql", json=body) as resp:
            over_http = await resp.json()
        async with gateway.http.post(f"{gateway.url}/graphql", json=body, headers=SSE) as resp:
            assert resp.status == 200
            [(event, over_sse), complete] = await all_events(resp)
        over_websocket = await over_a_websocket(gateway, body)
    assert event == "next" and complete == ("complete", None)
    codes = [error["extensions"]["code"] for error in over_http["errors"]]
    assert codes and all(code for code in codes)
    assert [error["extensions"]["code"] for error in over_sse["errors"]] == codes
    assert "data" not in over_sse
    # A document that does not parse too: answered with a coded `error` message, the socket left open.
    assert [error["extensions"]["code"] for error in over_websocket] == codes


async def over_a_websocket(gateway: Gateway, body: dict[str, Any]) -> list[dict[str, Any]]:
    """The errors graphql-transport-ws answers a subscribe message with."""
    async with gateway.http.ws_connect(f"{gateway.url}/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": body})
        received = await ws.receive(timeout=5)
        if received.type is aiohttp.WSMsgType.CLOSE:
            return [{"message": received.extra, "close": received.data}]
        message = json.loads(received.data)
    if message["type"] == "error":
        errors: list[dict[str, Any]] = message["payload"]
        return errors
    assert message["type"] == "next", message
    return list(message["payload"]["errors"])


async def test_a_mutation_is_not_run_over_get(gateway: Gateway, sim: Sim) -> None:
    params = {"query": 'mutation { deleteLiveEvent(id: "TE9PUF9DQUxMOng=") { deletedId } }'}
    async with gateway.http.get(f"{gateway.url}/graphql", params=params) as resp:
        assert resp.status == 405
        over_http = await resp.json()
    async with gateway.http.get(f"{gateway.url}/graphql", params=params, headers=SSE) as resp:
        [(event, result), _] = await all_events(resp)
    assert event == "next"
    assert "data" not in result
    # Coded as over HTTP.
    assert [error["extensions"]["code"] for error in result["errors"]] == ["METHOD_NOT_ALLOWED"]
    assert result["errors"] == over_http["errors"]
    assert await sim.vendor_requests() == 0


async def test_json_is_still_the_answer_when_the_client_prefers_it() -> None:
    from gateway.media import prefers_event_stream

    assert prefers_event_stream("text/event-stream")
    assert prefers_event_stream("text/event-stream, */*")
    assert not prefers_event_stream("application/json, text/event-stream")
    assert not prefers_event_stream("text/event-stream;q=0.5, application/json")
    assert not prefers_event_stream("*/*")
    assert not prefers_event_stream("text/event-stream;q=0")


# The graphql-sse npm client, as a page or a BFF runs it.


@pytest.fixture
def sse_client(js_clients: Path) -> Path:
    return js_clients / "subscribe.cjs"


class NodeClient:
    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process

    async def line(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        async with asyncio.timeout(15):
            raw = await self.process.stdout.readline()
        assert raw, "the client exited without saying why"
        line: dict[str, Any] = json.loads(raw)
        return line


@asynccontextmanager
async def node_client(
    script: Path, gateway: Gateway, query: str, variables: dict[str, Any], wanted: int, headers: dict[str, str]
) -> AsyncIterator[NodeClient]:
    process = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        f"{gateway.url}/graphql",
        json.dumps(headers),
        query,
        json.dumps(variables),
        str(wanted),
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        yield NodeClient(process)
        async with asyncio.timeout(15):
            assert await process.wait() == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


async def test_the_graphql_sse_client_follows_a_subscription_and_unsubscribes(
    sse_client: Path, make_gateway: Callable[..., Any], sim: Sim
) -> None:
    async with make_gateway(sse_heartbeat_interval=0.1) as gateway:
        stream = (await create(gateway, streamloop={"destinationId": "d"}))["STREAMLOOP_STREAM"]["id"]
        variables = {"filter": {"sources": ["STREAMLOOP_STREAM"]}}
        viewer = auth_header(Role.VIEWER, "dashboard")
        async with node_client(sse_client, gateway, STATS, variables, 2, viewer) as client:
            first = await client.line()
            assert first == {"result": {"data": {"liveEventStatsUpdated": {"total": 1, "liveNow": 0}}}}
            await gateway.query(f'mutation {{ startLiveEvent(id: "{stream}") {{ event {{ id }} }} }}')
            assert await client.line() == {"result": {"data": {"liveEventStatsUpdated": {"total": 1, "liveNow": 1}}}}
            assert await client.line() == {"done": True}
        await subscribers_become(gateway, 0)


async def test_the_graphql_sse_client_runs_a_query_to_completion(sse_client: Path, gateway: Gateway, sim: Sim) -> None:
    async with node_client(sse_client, gateway, "{ vendors { vendor } }", {}, 99, auth_header(Role.VIEWER)) as client:
        result = await client.line()
        assert await client.line() == {"done": True}  # the server completed it
    assert {row["vendor"] for row in result["result"]["data"]["vendors"]} == {"LOOP", "STREAMLOOP", "LIVEPUSH"}


async def test_the_graphql_sse_client_is_refused_without_valid_credentials(
    sse_client: Path, gateway: Gateway, sim: Sim
) -> None:
    bad = {"Authorization": "Bearer not-a-token"}
    async with node_client(sse_client, gateway, UPDATED, {}, 1, bad) as client:
        assert await client.line() == {"error": "Server responded with 401: Unauthorized", "status": 401}


async def test_streams_count_against_the_callers_connections(make_gateway: Callable[..., Any], sim: Sim) -> None:
    limits = LimitSettings(max_sockets_per_caller=1)
    async with make_gateway(limits=limits, sse_heartbeat_interval=0.1) as gateway:
        async with sse(gateway, UPDATED) as first:
            assert first.status == 200
            await subscribers_become(gateway, 1)
            async with sse(gateway, UPDATED) as second:
                assert second.status == 429
                assert (await second.json())["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
            # A websocket of the same caller counts against the same limit.
            async with gateway.http.ws_connect(f"{gateway.url}/graphql", protocols=["graphql-transport-ws"]) as ws:
                await ws.send_json({"type": "connection_init", "payload": {}})
                closed = await ws.receive(timeout=5)
                assert (closed.type, closed.data) == (aiohttp.WSMsgType.CLOSE, 4429)
            # Another caller is not held back by this one.
            async with sse(gateway, UPDATED, headers=auth_header(Role.VIEWER, "someone-else")) as other:
                assert other.status == 200
        # Closing the stream gave its place back (once the server saw it closed).
        async with asyncio.timeout(5):
            while gateway.server.app[CALLER_SOCKETS].held("sub:tester"):  # noqa: ASYNC110 (the gateway's state)
                await asyncio.sleep(0.01)
        async with sse(gateway, "{ vendors { vendor } }") as again:
            assert again.status == 200
            await all_events(again)


async def test_a_stream_ends_when_its_token_expires(make_gateway: Callable[..., Any], sim: Sim) -> None:
    async with make_gateway(auth=AuthSettings(jwt_secret=JWT_SECRET, leeway=0)) as gateway:
        short_lived = {"Authorization": f"Bearer {token_for(Role.VIEWER, 'brief', ttl=1)}"}
        async with sse(gateway, UPDATED, headers=short_lived) as resp:
            assert resp.status == 200
            received = await all_events(resp)
        await subscribers_become(gateway, 0)
    assert received == [
        (
            "next",
            {
                "errors": [
                    {
                        "message": "the credentials have expired",
                        "extensions": {"code": "UNAUTHENTICATED", "retryable": False},
                    }
                ]
            },
        ),
        ("complete", None),
    ]


async def test_a_subscription_may_be_a_get_as_event_source_sends_it(gateway: Gateway, sim: Sim) -> None:
    params = {"query": STATS, "variables": json.dumps({"filter": {"sources": ["LOOP_CALL"]}})}
    async with gateway.http.get(f"{gateway.url}/graphql", params=params, headers=SSE) as resp:
        assert resp.status == 200
        async with asyncio.timeout(10):
            event, data = await anext(events(resp))
    assert (event, json.loads(data)) == ("next", {"data": {"liveEventStatsUpdated": {"total": 0, "liveNow": 0}}})
