"""MongoDB that does not answer: the gateway says so at once, with a coded, retryable STORE_UNAVAILABLE,
instead of waiting out server selection and answering INTERNAL. Reads by id are served from the vendors,
listings and counts answer the error, mutations refuse before any vendor call, /readyz says not ready,
and all is well again once MongoDB answers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest

from tests.conftest import Sim
from tests.gateway_harness import Gateway
from tests.tcp_proxy import TcpProxy, proxy_to
from tests.test_mutations import ALL_TARGETS, OPERATION, create, create_input, creates_at_vendors, verb
from tests.test_read_path import LIST_QUERY

READ = "query($id: ID!) { liveEvent(id: $id) { id status freshness { servedFrom stale } } }"
STATS = "{ liveEventStats { total } }"
#: short, so that the test does not wait out the default
STORE_TIMEOUT = 0.5


def assert_store_unavailable(body: dict[str, Any]) -> None:
    errors = body.get("errors") or []
    assert errors, body
    assert all(error["extensions"]["code"] == "STORE_UNAVAILABLE" for error in errors), body
    assert all(error["extensions"]["retryable"] is True for error in errors), body


async def subscription_errors(gateway: Gateway) -> list[dict[str, Any]]:
    """The errors a `liveEventUpdated` subscription is answered with over graphql-transport-ws."""
    async with gateway.http.ws_connect(f"{gateway.url}/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        query = "subscription { liveEventUpdated { id status } }"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
        while True:
            message = await ws.receive_json(timeout=5)
            if message["type"] == "error":
                errors: list[dict[str, Any]] = message["payload"]
                return errors
            if message["type"] == "next":
                return list(message["payload"].get("errors") or [message["payload"]])


async def vendor_calls(sim: Sim) -> int:
    return await sim.vendor_requests()


async def break_store(proxy: TcpProxy, how: str) -> None:
    if how == "gone":
        await proxy.cut()
    else:
        proxy.stall()


@pytest.mark.parametrize("how", ["gone", "hanging"])
async def test_a_store_that_does_not_answer_fails_fast_and_says_so(
    sim: Sim, mongo_uri: str, make_gateway: Callable[..., Any], how: str
) -> None:
    async with (
        proxy_to(mongo_uri) as proxy,
        # No memory of recent reads: a read by id after the outage begins is a read of the store.
        make_gateway(mongodb_uri=proxy.uri, mongodb_timeout=STORE_TIMEOUT, read_memo_ttl=0) as gw,
    ):
        gateway: Gateway = gw
        made = await create(gateway, create_input("Before the outage", streamloop=ALL_TARGETS["streamloop"]))
        [event] = made["data"]["createLiveEvent"]["events"]
        await gateway.services.store.events.settled()

        await break_store(proxy, how)

        # A read by id: from the vendor, marked so, without an error.
        read = await gateway.query(READ, {"id": event["id"]})
        assert "errors" not in read, read
        assert read["data"]["liveEvent"]["freshness"]["servedFrom"] == "VENDOR"
        assert read["data"]["liveEvent"]["status"] == "SCHEDULED"

        # Listings and counts: the error, without asking any vendor.
        await sim.control("POST", "reset", {"stats_only": True})
        assert_store_unavailable(await gateway.query(LIST_QUERY, {"first": 5}))
        assert_store_unavailable(await gateway.query(STATS))
        operation = made["data"]["createLiveEvent"]["operationId"]
        assert_store_unavailable(await gateway.query(OPERATION, {"id": operation}))
        assert await vendor_calls(sim) == 0

        # Mutations: refused before any vendor call.
        assert_store_unavailable(await create(gateway, create_input("During the outage")))
        assert_store_unavailable(await verb(gateway, "startLiveEvent", event["id"]))
        assert await creates_at_vendors(sim) == {}
        assert await vendor_calls(sim) == 0

        # A subscription: its changes come through MongoDB, so it is refused too, coded the same.
        assert_store_unavailable({"errors": await subscription_errors(gateway)})

        async with gateway.http.get(f"{gateway.url}/readyz") as resp:
            assert resp.status == 503
            assert (await resp.json())["mongodb"].startswith("error")

        if how == "gone":
            await proxy.restore()
        else:
            proxy.resume()
        # Back: listings work again, without a restart.
        for _ in range(200):
            body = await gateway.query(LIST_QUERY, {"first": 5})
            if "errors" not in body:
                break
            await asyncio.sleep(0.05)
        assert "errors" not in body, body
        assert event["id"] in [edge["node"]["id"] for edge in body["data"]["liveEvents"]["edges"]]
        async with gateway.http.get(f"{gateway.url}/readyz") as resp:
            assert resp.status == 200
