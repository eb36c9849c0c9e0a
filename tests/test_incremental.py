"""@defer and @stream over multipart/mixed, as Apollo's and Hive's clients read them: what the cache holds
comes in the first part, what a slow vendor answers in a later one."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp

from gateway.settings import LivepushSettings, Role
from tests.conftest import SIM_TOKEN, Sim
from tests.gateway_harness import Gateway, auth_header
from tests.test_live_updates import create

MULTIPART = {"Accept": "multipart/mixed;deferSpec=20220824, application/json"}
DEFERRED = """query($cached: ID!, $slow: ID!) {
  cached: liveEvent(id: $cached) { id freshness { servedFrom } }
  ... @defer(label: "vendor") { slow: liveEvent(id: $slow) { id freshness { servedFrom } } }
}"""


async def parts(gateway: Gateway, query: str, variables: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Each JSON part of a multipart/mixed answer, in the order they came."""
    body = {"query": query, "variables": variables or {}}
    async with gateway.http.post(f"{gateway.url}/graphql", json=body, headers=MULTIPART) as resp:
        assert resp.status == 200, await resp.text()
        assert resp.headers["Content-Type"].startswith("multipart/mixed")
        reader = aiohttp.MultipartReader.from_response(resp)
        received = []
        while (part := await reader.next()) is not None:
            assert isinstance(part, aiohttp.BodyPartReader)
            received.append(await part.json())
        return received


async def test_the_cache_comes_first_and_the_slow_vendor_after(make_gateway: Callable[..., Any], sim: Sim) -> None:
    # Livepush events are always asked of the vendor, which takes its time.
    livepush = LivepushSettings(base_url=sim.livepush_url, token=SIM_TOKEN, read_timeout=5.0, fresh_for=0)
    async with make_gateway(livepush=livepush) as gateway:
        events = await create(gateway, streamloop={"destinationId": "d"}, livepush={"category": "SIMULCAST"})
        cached, slow = events["STREAMLOOP_STREAM"]["id"], events["LIVEPUSH_STREAM"]["id"]
        await sim.control("POST", "faults", {"livepush": {"latency_ms": 300}})
        first, *rest = await parts(gateway, DEFERRED, {"cached": cached, "slow": slow})
    assert first == {
        "data": {"cached": {"id": cached, "freshness": {"servedFrom": "CACHE"}}},
        "hasNext": True,
        "pending": [{"id": "0", "path": [], "label": "vendor"}],
        "extensions": {},
    }
    [later] = rest
    assert later["hasNext"] is False
    assert later["incremental"] == [
        {
            "data": {"slow": {"id": slow, "freshness": {"servedFrom": "VENDOR"}}},
            "id": "0",
            "path": [],
            "label": "vendor",
        }
    ]
    assert later["completed"] == [{"id": "0"}]
    # `extensions`, when a part has it, is a map (the GraphQL response format): never null.
    assert "extensions" not in later


async def test_a_list_is_streamed_item_by_item(gateway: Gateway, sim: Sim) -> None:
    await create(gateway, streamloop={"destinationId": "d"}, livepush={"category": "SIMULCAST"})
    query = "{ liveEvents(first: 5) { edges @stream(initialCount: 1) { node { source } } } }"
    first, *rest = await parts(gateway, query)
    assert first["data"] == {"liveEvents": {"edges": [{"node": {"source": "LIVEPUSH_STREAM"}}]}}
    assert first["hasNext"] is True
    items = [item for part in rest for entry in part.get("incremental", ()) for item in entry["items"]]
    assert items == [{"node": {"source": "STREAMLOOP_STREAM"}}]
    assert rest[-1]["hasNext"] is False


async def test_an_error_in_a_deferred_part_carries_its_code(gateway: Gateway, sim: Sim) -> None:
    query = '{ vendors { vendor } ... @defer { liveEvents(first: 1, after: "not-a-cursor") { totalCount } } }'
    first, *rest = await parts(gateway, query)
    assert first["hasNext"] is True
    errors = [error for part in rest for done in part.get("completed", ()) for error in done.get("errors", ())]
    errors += [error for part in rest for entry in part.get("incremental", ()) for error in entry.get("errors", ())]
    assert [error["extensions"]["code"] for error in errors] == ["BAD_USER_INPUT"]


async def test_a_client_that_reads_no_parts_is_told_to_ask_for_them(gateway: Gateway, sim: Sim) -> None:
    status, body = await gateway.post("{ vendors { vendor } ... @defer { liveEvents(first: 1) { totalCount } } }")
    assert status == 406
    assert body["errors"][0]["extensions"]["code"] == "NOT_ACCEPTABLE"
    assert "multipart/mixed" in body["errors"][0]["message"]


async def test_an_operation_that_defers_nothing_is_one_document(gateway: Gateway, sim: Sim) -> None:
    body = {"query": "{ vendors { vendor } ... @defer(if: false) { liveEvents(first: 1) { totalCount } } }"}
    async with gateway.http.post(f"{gateway.url}/graphql", json=body, headers=MULTIPART) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        answer = await resp.json()
    assert answer["data"]["liveEvents"] == {"totalCount": 0}


async def test_over_sse_each_part_is_one_event(gateway: Gateway, sim: Sim) -> None:
    from tests.test_sse import all_events, sse

    async with sse(gateway, "{ vendors { vendor } ... @defer { liveEvents(first: 1) { totalCount } } }") as resp:
        received = await all_events(resp)
    [(first_event, first), (later_event, later), complete] = received
    assert (first_event, later_event, complete) == ("next", "next", ("complete", None))
    assert first["hasNext"] is True and "liveEvents" not in first["data"]
    assert later["incremental"][0]["data"] == {"liveEvents": {"totalCount": 0}}
    assert later["hasNext"] is False


def merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """What a client makes of the parts: each deferred part's data put in at its path."""
    data: dict[str, Any] = parts[0]["data"]
    for part in parts[1:]:
        for entry in part.get("incremental", ()):
            target: Any = data
            for key in entry["path"]:
                target = target[key]
            target.update(entry["data"])
    return data


async def test_a_multipart_reader_of_the_javascript_clients_gets_the_parts(
    js_clients: Path, make_gateway: Callable[..., Any], sim: Sim
) -> None:
    livepush = LivepushSettings(base_url=sim.livepush_url, token=SIM_TOKEN, read_timeout=5.0, fresh_for=0)
    async with make_gateway(livepush=livepush) as gateway:
        events = await create(gateway, streamloop={"destinationId": "d"}, livepush={"category": "SIMULCAST"})
        variables = {"cached": events["STREAMLOOP_STREAM"]["id"], "slow": events["LIVEPUSH_STREAM"]["id"]}
        process = await asyncio.create_subprocess_exec(
            "node", str(js_clients / "defer.cjs"), f"{gateway.url}/graphql", json.dumps(auth_header(Role.VIEWER)),
            DEFERRED, json.dumps(variables), stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        async with asyncio.timeout(30):
            out, _ = await process.communicate()
        assert process.returncode == 0, out
        whole = (await gateway.query(DEFERRED.replace('... @defer(label: "vendor") ', "... "), variables))["data"]
    parts = [json.loads(line)["part"] for line in out.decode().splitlines()]
    assert [part["hasNext"] for part in parts] == [True, False]
    assert "slow" not in parts[0]["data"]
    assert merged(parts) == whole


async def test_an_operation_answered_whole_is_counted_once(gateway: Gateway, sim: Sim) -> None:
    body = {"query": "query Whole { vendors { vendor } ... @defer(if: false) { liveEvents(first: 1) { totalCount } } }"}
    async with gateway.http.post(f"{gateway.url}/graphql", json=body, headers=MULTIPART) as resp:
        assert resp.status == 200
    async with gateway.http.get(f"{gateway.url}/metrics") as resp:
        metrics = await resp.text()
    assert 'live_gateway_graphql_requests_total{operation="Whole",outcome="ok",type="query"} 1.0' in metrics


async def test_a_websocket_refuses_parts_with_the_code_http_gives(gateway: Gateway, sim: Sim) -> None:
    async with gateway.http.ws_connect(f"{gateway.url}/graphql", protocols=["graphql-transport-ws"]) as ws:
        await ws.send_json({"type": "connection_init", "payload": {}})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        query = "{ vendors { vendor } ... @defer { liveEvents(first: 1) { totalCount } } }"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
        message = await ws.receive_json(timeout=5)
    assert message["type"] == "error"
    assert [error["extensions"]["code"] for error in message["payload"]] == ["NOT_ACCEPTABLE"]
