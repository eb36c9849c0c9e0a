"""One viewer cannot spend a vendor's quota or open its circuit for everyone: cost counts the vendor calls
a request can make, ids a vendor does not have are remembered briefly, the wait for a vendor slot is no
vendor failure, and each caller has a budget of vendor calls per window."""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from typing import Any

from gateway.ids import encode_global_id
from gateway.keys import SETTINGS
from gateway.model import Source, Vendor
from gateway.reload import reload_settings
from gateway.settings import LimitSettings, LoopSettings, Role, Settings
from tests.conftest import SIM_TOKEN, Sim
from tests.gateway_harness import Gateway, auth_header, token_for
from tests.test_websocket_limits import socket

CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
NODES = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"


def unknown_streams(count: int) -> list[str]:
    """Global ids of Streamloop streams in Streamloop's id shape that Streamloop does not have."""
    rng = random.Random()
    natives = ["stream_" + "".join(rng.choice(CROCKFORD) for _ in range(26)) for _ in range(count)]
    return [encode_global_id(Source.STREAMLOOP_STREAM, native) for native in natives]


def unknown_calls(count: int) -> list[str]:
    return [encode_global_id(Source.LOOP_CALL, str(uuid.uuid4())) for _ in range(count)]


async def test_cost_counts_the_vendor_calls_of_a_batch(gateway: Gateway, sim: Sim) -> None:
    aliases = " ".join(f"a{i}: nodes(ids: $ids{i}) {{ id }}" for i in range(7))
    declared = ", ".join(f"$ids{i}: [ID!]!" for i in range(7))
    variables = {f"ids{i}": unknown_streams(100) for i in range(7)}
    _, body = await gateway.post(f"query({declared}) {{ {aliases} }}", variables)
    assert "data" not in body or body["data"] is None, body
    assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
    assert await sim.vendor_requests() == 0
    # One batch of a hundred is within the limit.
    _, body = await gateway.post(NODES, {"ids": unknown_streams(100)})
    assert body["data"]["nodes"] == [None] * 100


async def test_ids_a_vendor_does_not_have_are_remembered(gateway: Gateway, sim: Sim) -> None:
    ids = unknown_streams(10)
    assert (await gateway.query(NODES, {"ids": ids}))["data"]["nodes"] == [None] * 10
    asked = await sim.vendor_requests("streamloop")
    assert asked == 10
    for query in (NODES, "query($ids: [ID!]!) { nodes(ids: $ids) { id } again: nodes(ids: $ids) { id } }"):
        assert (await gateway.query(query, {"ids": ids}))["data"]["nodes"] == [None] * 10
    assert await sim.vendor_requests("streamloop") == asked


async def test_each_caller_has_a_budget_of_vendor_calls(make_gateway: Callable[..., Any], sim: Sim) -> None:
    async with make_gateway(limits=LimitSettings(vendor_call_budget="5/minute")) as gw:
        mallory = auth_header(Role.VIEWER, "mallory")
        _, body = await gw.post(NODES, {"ids": unknown_streams(10)}, headers=mallory)
        assert await sim.vendor_requests("streamloop") == 5
        codes = [error["extensions"]["code"] for error in body["errors"]]
        assert codes == ["RATE_LIMITED"] * 5
        assert all(error["extensions"]["retryAfter"] >= 1 for error in body["errors"])
        client = gw.services.clients[Vendor.STREAMLOOP]
        assert client.breaker.consecutive_failures == 0 and client.health.last_error is None
        # Another caller still reaches the vendor.
        _, body = await gw.post(NODES, {"ids": unknown_streams(2)}, headers=auth_header(Role.VIEWER, "alice"))
        assert body == {"data": {"nodes": [None, None]}}
        assert await sim.vendor_requests("streamloop") == 7


async def test_waiting_for_a_vendor_slot_is_not_a_vendor_failure(make_gateway: Callable[..., Any], sim: Sim) -> None:
    loop = LoopSettings(
        base_url=sim.loop_url,
        token=SIM_TOKEN,
        max_concurrency=1,
        connect_timeout=0.2,
        read_timeout=0.5,
        retries=0,
        breaker_failures=2,
    )
    async with make_gateway(loop=loop) as gw:
        await sim.control("POST", "faults", {"loop": {"latency_ms": 300}})
        _, body = await gw.post(NODES, {"ids": unknown_calls(6)})
        assert body == {"data": {"nodes": [None] * 6}}
        client = gw.services.clients[Vendor.LOOP]
        assert client.breaker.state.value == "closed"
        assert client.breaker.consecutive_failures == 0
        assert await sim.vendor_requests("loop") == 6


async def test_over_a_websocket_the_cost_and_the_budget_hold_the_same(
    make_gateway: Callable[..., Any], sim: Sim
) -> None:
    async with make_gateway(limits=LimitSettings(vendor_call_budget="3/minute")) as gw:
        token = token_for(Role.VIEWER, "mallory")
        async with socket(gw, token) as (ws, ack):
            assert ack["type"] == "connection_ack"
            aliases = " ".join(f"a{i}: nodes(ids: $ids) {{ id }}" for i in range(7))
            operation_id = str(uuid.uuid4())
            await ws.ws.send_json(
                {
                    "id": operation_id,
                    "type": "subscribe",
                    "payload": {
                        "query": f"query($ids: [ID!]!) {{ {aliases} }}",
                        "variables": {"ids": unknown_streams(100)},
                    },
                }
            )
            refused = await ws.receive()
            assert refused["type"] == "error"
            assert refused["payload"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
            assert await sim.vendor_requests() == 0
            await ws.ws.send_json(
                {
                    "id": str(uuid.uuid4()),
                    "type": "subscribe",
                    "payload": {"query": NODES, "variables": {"ids": unknown_streams(5)}},
                }
            )
            answer = await ws.receive()
            assert answer["type"] == "next"
            codes = [error["extensions"]["code"] for error in answer["payload"]["errors"]]
            assert codes == ["RATE_LIMITED"] * 2
            assert await sim.vendor_requests("streamloop") == 3


async def test_a_reload_takes_a_new_vendor_call_budget(make_gateway: Callable[..., Any], sim: Sim) -> None:
    async with make_gateway(limits=LimitSettings(vendor_call_budget="2/minute")) as gw:
        await gw.post(NODES, {"ids": unknown_streams(5)})
        assert await sim.vendor_requests("streamloop") == 2
        current: Settings = gw.server.app[SETTINGS]
        new = current.model_copy(update={"limits": LimitSettings(vendor_call_budget="100/minute")})
        assert reload_settings(gw.server.app, read=lambda: new)
        _, body = await gw.post(NODES, {"ids": unknown_streams(3)})
        assert body == {"data": {"nodes": [None] * 3}}
        assert await sim.vendor_requests("streamloop") == 5


async def test_over_a_websocket_missing_ids_are_remembered_too(gateway: Gateway, sim: Sim) -> None:
    ids = unknown_streams(4)
    async with socket(gateway, token_for(Role.VIEWER)) as (ws, _):
        for _ in range(3):
            await ws.ws.send_json(
                {"id": str(uuid.uuid4()), "type": "subscribe", "payload": {"query": NODES, "variables": {"ids": ids}}}
            )
            assert (await ws.receive())["payload"] == {"data": {"nodes": [None] * 4}}
    assert await sim.vendor_requests("streamloop") == 4
