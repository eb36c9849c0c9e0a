"""Property-based fuzzing of /graphql: whatever is sent, the gateway never answers 500, and every error it
reports carries a code.

Valid and invalid documents come from hypothesis-graphql (generated from the exported schema); bodies and
variables from plain Hypothesis strategies. Requests go over loopback to a real gateway on the simulators.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from datetime import UTC
from pathlib import Path
from typing import Any

import aiohttp
import graphql
import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema

from gateway.settings import LimitSettings
from tests.gateway_harness import Gateway

SCHEMA = graphql.build_schema(Path(__file__).parent.parent.joinpath("schema.graphql").read_text())
DATETIME = st.datetimes(timezones=st.just(UTC)).map(lambda d: graphql.StringValueNode(value=d.isoformat()))
SCALARS = {"DateTime": DATETIME, "JSON": st.just(graphql.ObjectValueNode(fields=()))}
FUZZ = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture]
)

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)


def check(status: int, body: bytes) -> None:
    assert status < 500, (status, body[:500])
    if not body:
        return
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError:
        return  # the GraphiQL page, or aiohttp's own 4xx text
    for error in document.get("errors") or [] if isinstance(document, dict) else []:
        assert error.get("extensions", {}).get("code"), error
        assert error["extensions"]["code"] != "INTERNAL", error


def run_fuzz(gw: Gateway, loop: asyncio.AbstractEventLoop) -> Callable[..., tuple[int, bytes]]:
    """A blocking sender for Hypothesis's thread, running each request on the test's event loop."""

    async def send(method: str, **kwargs: Any) -> tuple[int, bytes]:
        async with gw.http.request(method, f"{gw.url}/graphql", **kwargs) as resp:
            return resp.status, await resp.read()

    def blocking(method: str, **kwargs: Any) -> tuple[int, bytes]:
        return asyncio.run_coroutine_threadsafe(send(method, **kwargs), loop).result(timeout=30)

    return blocking


async def fuzz(gw: Gateway, test: Callable[[Callable[..., tuple[int, bytes]]], None]) -> None:
    sender = run_fuzz(gw, asyncio.get_running_loop())
    await asyncio.to_thread(test, sender)


async def test_valid_queries_never_fail_the_server(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway(limits=LimitSettings(max_cost=100_000)) as gw:

        @FUZZ
        @given(query=from_schema(SCHEMA, custom_scalars=SCALARS, fields=None))
        def test(send: Callable[..., tuple[int, bytes]], query: str) -> None:
            check(*send("POST", json={"query": query}))

        await fuzz(gw, lambda send: test(send))


async def test_invalid_queries_are_refused_with_codes(gateway: Gateway) -> None:
    @FUZZ
    @given(query=from_schema(SCHEMA, custom_scalars=SCALARS, mode=Mode.NEGATIVE))
    def test(send: Callable[..., tuple[int, bytes]], query: str) -> None:
        check(*send("POST", json={"query": query}))

    await fuzz(gateway, lambda send: test(send))


async def test_arbitrary_bodies_and_variables_never_fail_the_server(gateway: Gateway) -> None:
    event_query = (
        "query($id: ID!, $first: Int, $f: LiveEventFilter) "
        "{ liveEvent(id: $id) { id } liveEvents(first: $first, filter: $f) { totalCount } }"
    )
    variables = st.fixed_dictionaries({"id": json_values, "first": json_values, "f": json_values})

    @FUZZ
    @given(
        body=st.one_of(
            json_values.map(lambda value: json.dumps(value).encode()),
            st.binary(max_size=64),
            st.fixed_dictionaries(
                {"query": st.just(event_query), "variables": json_values},
                optional={"operationName": json_values, "extensions": json_values},
            ).map(lambda value: json.dumps(value).encode()),
            st.fixed_dictionaries({"query": st.just(event_query), "variables": variables}).map(
                lambda value: json.dumps(value).encode()
            ),
        ),
        content_type=st.sampled_from(["application/json", "text/plain", "application/graphql", "multipart/form-data"]),
        accept=st.sampled_from(["application/json", "application/graphql-response+json", "*/*", "text/html", ""]),
        method=st.sampled_from(["POST", "GET", "PUT"]),
    )
    def test(send: Callable[..., tuple[int, bytes]], body: bytes, content_type: str, accept: str, method: str) -> None:
        headers = {"Content-Type": content_type}
        if accept:
            headers["Accept"] = accept
        if method == "GET":
            check(*send("GET", params={"query": body.decode(errors="replace")}, headers=headers))
        else:
            check(*send(method, data=body, headers=headers))

    await fuzz(gateway, lambda send: test(send))


async def test_websocket_messages_never_crash_the_connection_handler(gateway: Gateway) -> None:
    async with gateway.http.ws_connect(f"{gateway.url}/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_str("not json")
        message = await ws.receive(timeout=5)
        assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.CLOSING)
    async with gateway.http.get(f"{gateway.url}/healthz") as resp:
        assert resp.status == 200
