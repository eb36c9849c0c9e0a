"""Loop webhooks that are not what Loop sent now: a bad signature header, a missing or stale timestamp,
a replayed message. None may fail the gateway or make it call Loop again."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
import pytest

from gateway.webhooks import SIGNATURE_HEADER, sign
from tests.conftest import Sim
from tests.gateway_harness import Gateway
from tests.test_live_updates import SECRET, create


@pytest.fixture
async def hooked(make_gateway: Callable[..., Any], settings_for: Any) -> AsyncIterator[Gateway]:
    base = settings_for().loop
    loop = type(base).model_validate({**base.model_dump(), "webhook_secret": SECRET})
    async with make_gateway(loop=loop) as gw:
        yield gw


async def send(gw: Gateway, body: bytes, signature: str | bytes | None = None) -> tuple[int, Any]:
    headers: dict[str, Any] = {"Content-Type": "application/json"}
    headers[SIGNATURE_HEADER] = sign(SECRET, body) if signature is None else signature
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gw.url}/webhooks/loop", data=body, headers=headers) as resp,
    ):
        return resp.status, await resp.json(content_type=None)


async def test_a_non_ascii_signature_is_401(hooked: Gateway) -> None:
    body = orjson.dumps({"id": "evt-x", "type": "call.session_started", "call_id": "c", "timestamp": int(time.time())})
    for signature in ("sha256=é", "sha256=" + "ü" * 64, "☃"):
        status, answer = await send(hooked, body, signature)
        assert status == 401, (signature, status, answer)


async def test_a_delivery_without_a_timestamp_or_with_an_old_one_is_refused(sim: Sim, hooked: Gateway) -> None:
    call = (await create(hooked, loopCall={}))["LOOP_CALL"]["nativeId"]
    await sim.control("POST", "reset", {"stats_only": True})
    delivery = {"id": "evt-old", "type": "call.session_started", "call_id": call}
    for payload, reason in (
        (delivery, "timestamp"),
        (delivery | {"timestamp": "yesterday"}, "timestamp"),
        (delivery | {"timestamp": int(time.time()) - 3600}, "timestamp"),
        (delivery | {"timestamp": int(time.time()) + 3600}, "timestamp"),
    ):
        status, answer = await send(hooked, orjson.dumps(payload))
        assert status == 400, (payload, status, answer)
        assert reason in answer["error"]
    assert await sim.vendor_requests("loop") == 0


async def test_a_delivery_that_failed_cannot_be_replayed(sim: Sim, hooked: Gateway) -> None:
    call = (await create(hooked, loopCall={}))["LOOP_CALL"]["nativeId"]
    await sim.control("POST", "faults", {"loop": {"error_status": 503, "error_rate": 1.0}})
    body = orjson.dumps(
        {"id": "evt-503", "type": "call.session_started", "call_id": call, "timestamp": int(time.time())}
    )
    status, _ = await send(hooked, body)
    assert status == 503
    await sim.control("POST", "faults", {"loop": {}})
    await sim.control("POST", "reset", {"stats_only": True})
    # The very message that was answered 503, sent again and again by someone who kept it: refused, and
    # Loop is not asked.
    for _ in range(3):
        status, answer = await send(hooked, body)
        assert status == 409, answer
    assert await sim.vendor_requests("loop") == 0
    # Loop itself delivers again, signing the new attempt with its own time: that one is applied.
    again = orjson.dumps(
        {"id": "evt-503", "type": "call.session_started", "call_id": call, "timestamp": int(time.time()) + 1}
    )
    assert await send(hooked, again) == (200, {"status": "applied"})


async def test_a_signature_that_is_not_even_utf8_is_401(hooked: Gateway) -> None:
    body = orjson.dumps({"id": "evt-y", "type": "call.session_started", "call_id": "c", "timestamp": int(time.time())})
    host, port = hooked.url.removeprefix("http://").rsplit(":", 1)
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(
        b"POST /webhooks/loop HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nConnection: close\r\n"
        b"X-Loop-Signature: sha256=\xff\xfe\x80\r\n" + f"Content-Length: {len(body)}\r\n\r\n".encode() + body
    )
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 401"), answer[:200]
