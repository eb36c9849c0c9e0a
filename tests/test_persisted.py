"""Persisted and trusted documents: automatic persisted queries as Apollo and Hive clients speak them,
document ids from manifests loaded by `live-gateway documents push`, and trusted mode, over HTTP and
websockets, kept in MongoDB for every replica."""

from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from gateway.cli import main as cli_main
from gateway.settings import DocumentMode, DocumentSettings, Role
from tests.gateway_harness import Gateway, auth_header, token_for

STATS = "query Stats { liveEventStats { total } }"
VENDORS = "query Vendors { vendors { vendor configured } }"


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def apq(text: str) -> dict[str, Any]:
    return {"persistedQuery": {"version": 1, "sha256Hash": sha(text)}}


async def post(gw: Gateway, body: dict[str, Any], role: Role = Role.VIEWER) -> tuple[int, dict[str, Any]]:
    async with gw.http.post(f"{gw.url}/graphql", json=body, headers=auth_header(role)) as resp:
        return resp.status, await resp.json()


async def get(gw: Gateway, params: dict[str, str], role: Role = Role.VIEWER) -> tuple[int, dict[str, Any]]:
    async with gw.http.get(f"{gw.url}/graphql", params=params, headers=auth_header(role)) as resp:
        return resp.status, await resp.json()


def codes(body: dict[str, Any]) -> list[str]:
    return [error["extensions"]["code"] for error in body.get("errors", [])]


async def documents_in(gw: Gateway) -> list[dict[str, Any]]:
    return await gw.services.store.documents.collection.find({}, {"text": 0, "stored_at": 0}).to_list()


async def test_automatic_persisted_queries_round_trip_on_every_replica(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway() as gw:
        database = gw.services.settings.mongodb_database
        # An unknown hash: the client is told to send the text (200, as Apollo's and Hive's clients expect).
        status, body = await post(gw, {"extensions": apq(STATS)})
        assert status == 200
        assert codes(body) == ["PERSISTED_QUERY_NOT_FOUND"] and "data" not in body
        assert await documents_in(gw) == []
        # The text with its hash runs and registers it ...
        status, body = await post(gw, {"query": STATS, "extensions": apq(STATS)})
        assert status == 200 and body["data"]["liveEventStats"]["total"] >= 0
        assert await documents_in(gw) == [
            {"_id": sha(STATS), "rev": 1, "sha256": sha(STATS), "trusted": False, "name": None}
        ]
        # ... so that the hash alone runs it, over POST and over GET.
        assert (await post(gw, {"extensions": apq(STATS)}))[1] == body
        status, by_get = await get(gw, {"extensions": json.dumps(apq(STATS))})
        assert status == 200 and by_get == body
        async with make_gateway(mongodb_database=database) as other:
            # Another replica knows it from MongoDB.
            assert (await post(other, {"extensions": apq(STATS)}))[1] == body


async def test_a_hash_that_is_not_the_texts_is_refused_and_registers_nothing(gateway: Gateway) -> None:
    status, body = await post(gateway, {"query": STATS, "extensions": apq(VENDORS)})
    assert status == 400 and codes(body) == ["PERSISTED_QUERY_HASH_MISMATCH"]
    assert codes((await post(gateway, {"extensions": apq(VENDORS)}))[1]) == ["PERSISTED_QUERY_NOT_FOUND"]
    assert await documents_in(gateway) == []
    for bad in ({"version": 2, "sha256Hash": sha(STATS)}, {"version": 1, "sha256Hash": "abc"}, "x"):
        status, body = await post(gateway, {"query": STATS, "extensions": {"persistedQuery": bad}})
        assert status == 400 and codes(body) == ["BAD_REQUEST"], bad
        assert "persistedQuery" in body["errors"][0]["message"]


async def push(tmp_path: Path, gw: Gateway, manifest: Any, monkeypatch: pytest.MonkeyPatch) -> int:
    """`live-gateway documents push FILE` into the gateway's database; its exit status."""
    path = tmp_path / "manifest.json"
    path.write_bytes(orjson.dumps(manifest))
    monkeypatch.setenv("LIVE_GATEWAY_MONGODB_DATABASE", gw.services.settings.mongodb_database)
    argv = ["documents", "push", str(path), "--uri", str(gw.services.settings.mongodb_uri)]
    try:
        # The command runs its own event loop, so it gets a thread of its own.
        await asyncio.to_thread(cli_main, argv)
    except SystemExit as exit:
        return int(exit.code or 0)
    return 0


def apollo_manifest(*texts: tuple[str, str]) -> dict[str, Any]:
    return {
        "format": "apollo-persisted-query-manifest",
        "version": 1,
        "operations": [{"id": sha(text), "name": name, "type": "query", "body": text} for name, text in texts],
    }


async def pushed_then_served(gw: Gateway, document_id: str, expected: str) -> None:
    status, by_get = await get(gw, {"documentId": document_id})
    assert status == 200 and expected in by_get["data"], by_get
    status, by_post = await post(gw, {"documentId": document_id})
    assert status == 200 and by_post == by_get


async def test_documents_pushed_from_apollo_and_relay_manifests_run_by_id(
    make_gateway: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: Any
) -> None:
    async with make_gateway() as gw:
        assert await push(tmp_path, gw, apollo_manifest(("Stats", STATS)), monkeypatch) == 0
        assert "1 trusted document(s) stored" in capsys.readouterr().out
        await pushed_then_served(gw, sha(STATS), "liveEventStats")
        # Relay's ids are its own (an MD5 here); its file maps each id to its text.
        assert await push(tmp_path, gw, {"relay-1f2e": VENDORS}, monkeypatch) == 0
        await pushed_then_served(gw, "relay-1f2e", "vendors")
        status, body = await get(gw, {"documentId": "relay-unknown"})
        assert status == 404 and codes(body) == ["PERSISTED_QUERY_NOT_FOUND"]
        # An id names one text forever; a document that would not run is not stored, nor is its file's rest.
        assert await push(tmp_path, gw, {"relay-1f2e": STATS}, monkeypatch) == 1
        assert "another text" in capsys.readouterr().err
        assert await push(tmp_path, gw, {"good": STATS, "bad": "{ noSuchField }"}, monkeypatch) == 1
        assert "bad: Cannot query field 'noSuchField'" in capsys.readouterr().err
        assert {doc["_id"] for doc in await documents_in(gw)} == {sha(STATS), "relay-1f2e"}
        # documentId goes alone.
        status, body = await post(gw, {"documentId": "relay-1f2e", "query": VENDORS})
        assert status == 400 and codes(body) == ["BAD_REQUEST"]


async def test_trusted_mode_runs_only_pushed_documents_except_for_exempt_roles(
    make_gateway: Callable[..., Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    trusted = DocumentSettings(mode=DocumentMode.TRUSTED, exempt_roles=[Role.ADMIN])
    async with make_gateway(documents=trusted) as gw:
        assert await push(tmp_path, gw, apollo_manifest(("Stats", STATS)), monkeypatch) == 0
        await pushed_then_served(gw, sha(STATS), "liveEventStats")
        # The same text as a trusted document runs too; any other does not, nor registers itself.
        status, body = await post(gw, {"query": STATS})
        assert status == 200 and "liveEventStats" in body["data"]
        for request in ({"query": VENDORS}, {"query": VENDORS, "extensions": apq(VENDORS)}):
            status, body = await post(gw, request)
            assert status == 403 and codes(body) == ["DOCUMENT_NOT_TRUSTED"], request
            assert "live-gateway documents push" in body["errors"][0]["message"]
        assert codes((await post(gw, {"extensions": apq(VENDORS)}))[1]) == ["PERSISTED_QUERY_NOT_FOUND"]
        assert [doc["_id"] for doc in await documents_in(gw)] == [sha(STATS)]
        # An exempt role (an admin in GraphiQL) sends what it likes.
        status, body = await post(gw, {"query": VENDORS}, role=Role.ADMIN)
        assert status == 200 and "vendors" in body["data"]
        # A websocket is held to the same rule.
        assert await subscribe(gw, "subscription { liveEventStatsUpdated { total } }", Role.VIEWER) == (
            "error",
            ["DOCUMENT_NOT_TRUSTED"],
        )
        kind, _ = await subscribe(gw, "subscription { liveEventStatsUpdated { total } }", Role.ADMIN)
        assert kind == "next"


async def subscribe(gw: Gateway, query: str, role: Role) -> tuple[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{gw.url}/graphql", protocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token_for(role)}"}})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
        answer = await ws.receive_json(timeout=5)
        if answer["type"] == "error":
            return "error", [error["extensions"]["code"] for error in answer["payload"]]
        return answer["type"], answer["payload"]


async def test_with_persisted_documents_off_a_hash_or_id_is_refused(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway(documents=DocumentSettings(mode=DocumentMode.OFF)) as gw:
        for request in ({"extensions": apq(STATS)}, {"query": STATS, "extensions": apq(STATS)}, {"documentId": "x"}):
            status, body = await post(gw, request)
            assert status == 400 and codes(body) == ["PERSISTED_QUERY_NOT_SUPPORTED"], request
        status, body = await post(gw, {"query": STATS})
        assert status == 200 and "errors" not in body


async def subscribe_payload(gw: Gateway, payload: dict[str, Any], role: Role = Role.VIEWER) -> tuple[str, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{gw.url}/graphql", protocols=["graphql-transport-ws"]) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": {"Authorization": f"Bearer {token_for(role)}"}})
        assert (await ws.receive_json(timeout=5))["type"] == "connection_ack"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": payload})
        answer = await ws.receive(timeout=5)
        if answer.type is not aiohttp.WSMsgType.TEXT:
            return "closed", (answer.data, answer.extra)
        message = json.loads(answer.data)
        if message["type"] == "error":
            return "error", [error["extensions"]["code"] for error in message["payload"]]
        return message["type"], message["payload"]


async def test_a_websocket_reads_hashes_and_ids_as_http_does(gateway: Gateway) -> None:
    # A hash that is not the text's is refused, and registers nothing, as over HTTP.
    assert await subscribe_payload(gateway, {"query": STATS, "extensions": apq(VENDORS)}) == (
        "error",
        ["PERSISTED_QUERY_HASH_MISMATCH"],
    )
    # An unknown hash or id is coded, not a reason to close the socket.
    assert await subscribe_payload(gateway, {"extensions": apq(VENDORS)}) == ("error", ["PERSISTED_QUERY_NOT_FOUND"])
    assert await subscribe_payload(gateway, {"documentId": "nothing"}) == ("error", ["PERSISTED_QUERY_NOT_FOUND"])
    assert await documents_in(gateway) == []
    # A hash registered over HTTP runs by itself over the websocket.
    assert (await post(gateway, {"query": STATS, "extensions": apq(STATS)}))[0] == 200
    kind, payload = await subscribe_payload(gateway, {"extensions": apq(STATS)})
    assert kind == "next" and payload["data"]["liveEventStats"]["total"] >= 0


async def test_what_clients_register_is_bounded_in_number_and_size(make_gateway: Callable[..., Any]) -> None:
    # Registration writes to the MongoDB every caller shares: one caller cannot fill it.
    bounded = DocumentSettings(max_registered=2, max_registered_bytes=200)
    async with make_gateway(documents=bounded) as gw:
        padded = "query Padded { vendors { vendor } }" + " " * 300
        status, body = await post(gw, {"query": padded, "extensions": apq(padded)})
        # Too long to keep: it runs, and is not registered.
        assert status == 200 and "vendors" in body["data"]
        assert codes((await post(gw, {"extensions": apq(padded)}))[1]) == ["PERSISTED_QUERY_NOT_FOUND"]
        texts = [f"query Q{i} {{ vendors {{ vendor }} }}" for i in range(3)]
        for text in texts:
            status, body = await post(gw, {"query": text, "extensions": apq(text)})
            assert status == 200 and "vendors" in body["data"]
        # Two are kept; the third ran but is not registered, so its client keeps sending its text.
        assert sorted(doc["_id"] for doc in await documents_in(gw)) == sorted(sha(text) for text in texts[:2])
        assert codes((await post(gw, {"extensions": apq(texts[2])}))[1]) == ["PERSISTED_QUERY_NOT_FOUND"]
        assert "vendors" in (await post(gw, {"extensions": apq(texts[0])}))[1]["data"]
