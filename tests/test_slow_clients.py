"""A client that sends its request slowly is dropped: the head of a request, and its body, each have a
deadline, whatever the pace of the bytes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any

import pytest

from gateway.app import create_app
from gateway.server import serving
from gateway.settings import LimitSettings
from tests.gateway_harness import auth_header, gateway_settings

#: a pace no deadline of these tests survives, and how many bytes at most are sent at it
PACE, MAX_BYTES = 0.5, 12


@pytest.fixture
async def address(settings_for: Callable[..., Any], mongo_uri: str) -> AsyncIterator[tuple[str, int]]:
    limits = LimitSettings(header_timeout=1.0, body_timeout=1.0, keepalive_timeout=1.0)
    app = create_app(gateway_settings(settings_for, mongo_uri, limits=limits))
    async with serving(
        app, "127.0.0.1", 0, header_timeout=limits.header_timeout, keepalive_timeout=limits.keepalive_timeout
    ) as url:
        host, port = url.removeprefix("http://").rsplit(":", 1)
        yield host, int(port)


async def trickle(address: tuple[str, int], head: bytes, slow: bytes) -> tuple[bytes, int]:
    """Sends `head` at once and then `slow` one byte per PACE; what the server answered, and how many slow
    bytes it took before it closed the connection (all of them: it never did)."""
    reader, writer = await asyncio.open_connection(*address)
    sent = 0
    try:
        writer.write(head)
        await writer.drain()
        for byte in slow[:MAX_BYTES]:
            if reader.at_eof():
                break
            try:
                answer = await asyncio.wait_for(reader.read(4096), timeout=PACE)
            except TimeoutError:
                answer = b""
            if answer or reader.at_eof():
                return answer + await _rest(reader), sent
            writer.write(bytes([byte]))
            try:
                await writer.drain()
            except ConnectionError:
                break
            sent += 1
        try:
            return await asyncio.wait_for(reader.read(), timeout=2), sent
        except TimeoutError:
            return b"", sent
    finally:
        writer.close()


async def _rest(reader: asyncio.StreamReader) -> bytes:
    """What is left of the answer. The server closes with bytes of ours unread, so its close may come as a
    reset once the answer is in: that ends the connection as its FIN would."""
    try:
        return await reader.read()
    except ConnectionResetError:
        return b""


async def test_a_request_head_sent_slowly_is_dropped(address: tuple[str, int]) -> None:
    headers = "".join(f"X-Filler-{i}: {'x' * 20}\r\n" for i in range(5))
    answer, sent = await trickle(address, b"POST /graphql HTTP/1.1\r\n", f"Host: x\r\n{headers}\r\n".encode())
    assert sent < MAX_BYTES, "the connection was still open"
    assert answer.startswith(b"HTTP/1.1 408") or answer == b""


async def test_a_body_sent_slowly_is_dropped(address: tuple[str, int]) -> None:
    body = b'{"query": "{ vendors { vendor } }"}' + b" " * 60
    auth = auth_header()["Authorization"]
    head = (
        f"POST /graphql HTTP/1.1\r\nHost: x\r\nAuthorization: {auth}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    answer, sent = await trickle(address, head, body)
    assert sent < MAX_BYTES, "the connection was still open"
    assert answer.startswith(b"HTTP/1.1 408"), answer


async def test_a_prompt_client_is_served_on_the_same_listener(address: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*address)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    answer = await asyncio.wait_for(reader.read(), timeout=5)
    writer.close()
    assert answer.startswith(b"HTTP/1.1 200")


async def test_an_idle_kept_alive_connection_is_closed(address: tuple[str, int]) -> None:
    reader, writer = await asyncio.open_connection(*address)
    try:
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)).startswith(b"HTTP/1.1 200")
        # Then nothing: the connection is let go once idle for the keep-alive timeout (1 s here).
        async with asyncio.timeout(10):
            while await reader.read(4096):
                pass
        assert reader.at_eof()
    finally:
        writer.close()
