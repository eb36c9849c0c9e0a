"""A loopback TCP proxy in front of a MongoDB server that can lose a command's reply, or the command
itself: the connection drops at that moment, as a network or a crashed proxy would drop it.

It reads the wire protocol's framing (OP_MSG) only to tell which command a message carries.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import bson

OP_MSG = 2013
Command = dict[str, Any]


def command_of(message: bytes) -> Command | None:
    """The command document of an OP_MSG (its section of kind 0), else None."""
    _, _, _, op_code = struct.unpack_from("<iiii", message)
    if op_code != OP_MSG:
        return None
    offset = 16 + 4  # header, flag bits
    while offset < len(message):
        kind = message[offset]
        offset += 1
        (size,) = struct.unpack_from("<i", message, offset)
        if kind == 0:
            document: Command = bson.decode(message[offset : offset + size])
            return document
        offset += size
    return None


def writes_to(verb: str, collection: str) -> Callable[[Command], bool]:
    return lambda command: command.get(verb) == collection


@dataclass
class _Fault:
    matches: Callable[[Command], bool]
    #: True: the command reaches the server, its reply is lost; False: the command itself is lost
    deliver: bool
    remaining: int


@dataclass
class MongoProxy:
    upstream_host: str
    upstream_port: int
    host: str = "127.0.0.1"
    port: int = 0
    #: the commands that were cut off, as sent
    cut: list[Command] = field(default_factory=list)
    _faults: list[_Fault] = field(default_factory=list)
    _server: asyncio.Server | None = None
    _clients: set[asyncio.StreamWriter] = field(default_factory=set)

    @property
    def uri(self) -> str:
        return f"mongodb://{self.host}:{self.port}/?directConnection=true"

    def lose_reply(self, matches: Callable[[Command], bool], times: int = 1) -> None:
        """The next `times` commands that `matches` reach the server; their replies never come back."""
        self._faults.append(_Fault(matches, True, times))

    def lose_command(self, matches: Callable[[Command], bool], times: int = 1) -> None:
        """The next `times` commands that `matches` never reach the server."""
        self._faults.append(_Fault(matches, False, times))

    def heal(self) -> None:
        """Every command and reply gets through from now on."""
        self._faults.clear()

    def _fault_for(self, command: Command | None) -> _Fault | None:
        if command is None:
            return None
        for fault in self._faults:
            if fault.remaining > 0 and fault.matches(command):
                fault.remaining -= 1
                self.cut.append(command)
                return fault
        return None

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        self._clients.add(client_writer)
        server_reader, server_writer = await asyncio.open_connection(self.upstream_host, self.upstream_port)
        lost_reply_to: set[int] = set()
        done = asyncio.Event()

        async def requests() -> None:
            while True:
                message = await _read_message(client_reader)
                fault = self._fault_for(command_of(message))
                if fault is not None and not fault.deliver:
                    return
                if fault is not None:
                    lost_reply_to.add(struct.unpack_from("<i", message, 4)[0])
                server_writer.write(message)
                await server_writer.drain()

        async def replies() -> None:
            while True:
                message = await _read_message(server_reader)
                if struct.unpack_from("<i", message, 8)[0] in lost_reply_to:
                    return  # applied by the server; the client never hears of it
                client_writer.write(message)
                await client_writer.drain()

        async def pump(coroutine: Any) -> None:
            with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError):
                await coroutine
            done.set()

        tasks = [asyncio.create_task(pump(requests())), asyncio.create_task(pump(replies()))]
        try:
            await done.wait()
        finally:
            for task in tasks:
                task.cancel()
            for writer in (client_writer, server_writer):
                writer.close()
            self._clients.discard(client_writer)
            await asyncio.gather(*tasks, return_exceptions=True)

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._serve, self.host, self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for writer in list(self._clients):
                writer.close()


async def _read_message(reader: asyncio.StreamReader) -> bytes:
    header = await reader.readexactly(16)
    (length,) = struct.unpack_from("<i", header)
    return header + await reader.readexactly(length - 16)


@contextlib.asynccontextmanager
async def mongo_proxy(mongo_uri: str) -> AsyncIterator[MongoProxy]:
    """A proxy in front of the single server `mongo_uri` names."""
    address = urlsplit(mongo_uri).netloc.rsplit("@", 1)[-1].split(",")[0]
    host, _, port = address.rpartition(":")
    proxy = MongoProxy(host or "127.0.0.1", int(port or 27017))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.stop()
