"""A TCP proxy on a loopback port in front of MongoDB, that a test can cut, stall, or make drop a reply.

The gateway under test is given the proxy's address; what passes through is the MongoDB wire protocol,
forwarded byte for byte, so the driver and the server are the real ones.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import AsyncIterator, Callable

#: OP_MSG: the message every command and its reply travel in
OP_MSG = 2013


class TcpProxy:
    def __init__(self, upstream_host: str, upstream_port: int) -> None:
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._server: asyncio.Server | None = None
        self._links: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        #: cleared while nothing is forwarded either way: the server seems to hang
        self._flowing = asyncio.Event()
        self._flowing.set()
        #: decides, per request (the bytes of one message to the server), whether its reply is lost
        self._drop_reply_of: Callable[[bytes], bool] | None = None
        self.dropped = 0

    @property
    def uri(self) -> str:
        # directConnection: a replica set member would otherwise be reached by the address it advertises
        return f"mongodb://127.0.0.1:{self.port}/?directConnection=true"

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", self.port)
        self.port = self._server.sockets[0].getsockname()[1]

    async def cut(self) -> None:
        """Close the port and every connection through it: the server is gone."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        for writer in list(self._writers):
            writer.close()
        for link in list(self._links):
            link.cancel()
        await asyncio.gather(*self._links, return_exceptions=True)

    async def restore(self) -> None:
        """Open the same port again."""
        await self.start()

    def stall(self) -> None:
        """Forward nothing more, either way, and keep every connection open: the server hangs."""
        self._flowing.clear()

    def resume(self) -> None:
        self._flowing.set()

    def drop_reply_once(self, matches: Callable[[bytes], bool]) -> None:
        """The next request that `matches` reaches the server; its reply does not come back, and its
        connection is closed (as when a network drops between the two)."""
        self._drop_reply_of = matches

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection(*self.upstream)
        except OSError:
            writer.close()
            return
        self._writers.update((writer, up_writer))
        dropping = asyncio.Event()
        to_server = asyncio.create_task(self._pump(reader, up_writer, requests=True, dropping=dropping))
        to_client = asyncio.create_task(self._pump(up_reader, writer, requests=False, dropping=dropping))
        self._links.update((to_server, to_client))
        await asyncio.wait([to_server, to_client], return_when=asyncio.FIRST_COMPLETED)
        for task in (to_server, to_client):
            task.cancel()
        for each in (writer, up_writer):
            each.close()
            self._writers.discard(each)
        self._links.difference_update((to_server, to_client))

    async def _pump(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, *, requests: bool, dropping: asyncio.Event
    ) -> None:
        with contextlib.suppress(asyncio.IncompleteReadError, ConnectionError, OSError):
            while True:
                header = await reader.readexactly(16)
                (length,) = struct.unpack("<i", header[:4])
                message = header + await reader.readexactly(length - 16)
                await self._flowing.wait()
                if requests and self._drop_reply_of is not None and self._drop_reply_of(message):
                    self._drop_reply_of = None
                    dropping.set()
                elif not requests and dropping.is_set():
                    # The request landed; its reply is lost with the connection.
                    self.dropped += 1
                    return
                writer.write(message)
                await writer.drain()


@contextlib.asynccontextmanager
async def proxy_to(mongo_uri: str) -> AsyncIterator[TcpProxy]:
    host_port = mongo_uri.removeprefix("mongodb://").split("/")[0]
    host, _, port = host_port.rpartition(":")
    proxy = TcpProxy(host.strip("[]"), int(port))
    await proxy.start()
    try:
        yield proxy
    finally:
        await proxy.cut()
