"""Running an aiohttp application on a port: start, say where it listens, stop gracefully on a signal.

Stopping follows aiohttp's runner: the listening socket closes (no new connections), `on_shutdown` closes
the long-lived connections going away (`gateway.shutdown`), requests in flight get `shutdown_timeout`
seconds to finish, then the cleanup contexts run.

A client that sends its request slowly is dropped: aiohttp's server waits as long as a client takes, so one
that trickles its head or its body a byte at a time holds a connection (and a handler) for as long as it
likes. Each connection's protocol is wrapped so that a request's head must arrive within `header_timeout`
of its first byte (or of the connection's opening), and `deadline_middleware` gives its body
`body_timeout`; a client that misses either is answered 408 and the connection is closed.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import errno
import logging
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import cast

from aiohttp import hdrs, web

from gateway.heap import settle_heap
from gateway.media import JSON, error_document, negotiate
from gateway.settings import ConfigurationError, LimitSettings

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def cannot_listen(host: str, port: int, exc: OSError, setting: str) -> ConfigurationError:
    reason = "the port is in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
    return ConfigurationError(f"cannot listen on {host}:{port} ({setting}): {reason}")


def check_port_free(host: str, port: int, setting: str) -> None:
    """Refuse a port another process listens on, before anything starts (workers bind it with SO_REUSEPORT,
    which would otherwise share it with a stranger)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port} ({setting}): {exc.strerror}") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise cannot_listen(host, port, exc, setting) from None


REQUEST_TIMEOUT = (
    b"HTTP/1.1 408 Request Timeout\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 36\r\n\r\n"
    b"the request was not sent in time\r\n\r\n"
)


class Phase(enum.Enum):
    HEAD = "head"  # waiting for a request's head: its bytes run against the header deadline
    REQUEST = "request"  # a request is being read or served; bytes are its body (or a websocket's frames)
    IDLE = "idle"  # between requests on a kept-alive connection: the next byte starts a head


class RequestDeadlines(asyncio.Protocol):
    """aiohttp's protocol for one connection, with a deadline on each request's head."""

    def __init__(self, inner: asyncio.Protocol, header_timeout: float) -> None:
        self.inner = inner
        self.header_timeout = header_timeout
        self.phase = Phase.HEAD
        self.transport: asyncio.Transport | None = None
        self._deadline: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports are transports without deriving from asyncio.Transport
        self.transport = cast(asyncio.Transport, transport)
        self._start_head()
        self.inner.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        if self.phase is Phase.IDLE and data:
            self.phase = Phase.HEAD
            self._start_head()
        self.inner.data_received(data)

    def eof_received(self) -> bool | None:
        return self.inner.eof_received()

    def connection_lost(self, exc: Exception | None) -> None:
        self._cancel()
        self.inner.connection_lost(exc)

    def pause_writing(self) -> None:
        self.inner.pause_writing()

    def resume_writing(self) -> None:
        self.inner.resume_writing()

    def head_received(self) -> None:
        """A request's head is in: what comes now is its body, until `request_done`."""
        self._cancel()
        self.phase = Phase.REQUEST

    def request_done(self) -> None:
        """The request's body is in (or it has none): the next bytes begin another request."""
        self.phase = Phase.IDLE

    def _start_head(self) -> None:
        self._cancel()
        self._deadline = asyncio.get_running_loop().call_later(self.header_timeout, self._head_expired)

    def _cancel(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _head_expired(self) -> None:
        self._deadline = None
        if self.phase is Phase.HEAD and self.transport is not None and not self.transport.is_closing():
            self.transport.write(REQUEST_TIMEOUT)
            self.transport.close()


def deadline_middleware(limits: LimitSettings) -> Callable[..., Awaitable[web.StreamResponse]]:
    """Tells the connection's deadlines where a request is, and reads its body within `body_timeout`."""

    @web.middleware
    async def deadlines(request: web.Request, handler: Handler) -> web.StreamResponse:
        transport = request.transport
        protocol = transport.get_protocol() if transport is not None else None
        guard = protocol if isinstance(protocol, RequestDeadlines) else None
        if guard is not None:
            guard.head_received()
        refused = await read_body(request, within=limits.body_timeout)
        if refused is not None:
            return refused
        upgrading = hdrs.UPGRADE in request.headers
        if guard is not None and not upgrading:
            guard.request_done()
        try:
            return await handler(request)
        finally:
            # A websocket's frames are no request head: the deadline resumes once the socket is done with.
            if guard is not None and upgrading:
                guard.request_done()

    return deadlines


async def read_body(request: web.Request, within: float) -> web.Response | None:
    """Reads the body into the request (handlers then get it at once); a refusal when it does not come in
    time or is over the size limit, after which the connection is closed."""
    if not request.body_exists:
        return None
    try:
        if request.content.is_eof():  # all of it came with the head: nothing to wait for
            await request.read()
            return None
        async with asyncio.timeout(within):
            await request.read()
    except TimeoutError:
        return await _refusal(request, 408, f"the body was not sent within {within:g} s", "REQUEST_TIMEOUT")
    except web.HTTPRequestEntityTooLarge:
        message = f"the body is larger than {request.client_max_size} bytes"
        return await _refusal(request, 413, message, "PAYLOAD_TOO_LARGE")
    return None


async def _refusal(request: web.Request, status: int, message: str, code: str) -> web.Response:
    content_type = negotiate(request.headers.get(hdrs.ACCEPT)) or JSON
    response = web.Response(status=status, body=error_document(message, {"code": code}), content_type=content_type)
    # The rest of the body is not read, so the connection cannot carry another request: the answer is sent
    # and the connection closed at once (aiohttp would otherwise read on for its lingering time).
    response.force_close()
    await response.prepare(request)
    await response.write_eof()
    if request.transport is not None:
        request.transport.close()
    return response


@contextlib.asynccontextmanager
async def serving(
    app: web.Application,
    host: str,
    port: int,
    *,
    setting: str = "--port",
    shutdown_timeout: float = 10.0,
    reuse_port: bool = False,
    header_timeout: float | None = None,
    keepalive_timeout: float | None = None,
    prepare: Callable[[web.Application], Awaitable[object]] | None = None,
) -> AsyncIterator[str]:
    """`app` on host:port until the block ends, which gets the URL it listens at. `prepare` runs once the
    app has started, before the first connection is accepted; `setting` names where the port came from in
    the error when it cannot be had; a request's head must arrive within `header_timeout` (by default,
    `LIVE_GATEWAY_LIMITS__HEADER_TIMEOUT`'s), and an idle kept-alive connection is closed after
    `keepalive_timeout` (`__KEEPALIVE_TIMEOUT`'s; aiohttp's own runner would hold it for an hour)."""
    defaults = LimitSettings()
    deadline = defaults.header_timeout if header_timeout is None else header_timeout
    keepalive = defaults.keepalive_timeout if keepalive_timeout is None else keepalive_timeout
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout, keepalive_timeout=keepalive)
    try:
        # A start that fails half-way still runs the cleanup of the contexts it entered.
        await runner.setup()
        if prepare is not None:
            await prepare(app)
        # aiohttp's TCPSite serves its own protocol; this listener serves it wrapped in the deadlines.
        try:
            listener = await asyncio.get_running_loop().create_server(
                lambda: RequestDeadlines(cast(asyncio.Protocol, runner.server()), deadline),  # type: ignore[misc]
                host,
                port,
                reuse_port=reuse_port or None,
            )
        except OSError as exc:
            raise cannot_listen(host, port, exc, setting) from None
        try:
            bound = listener.sockets[0].getsockname() if listener.sockets else (host, port)
            yield f"http://{host}:{bound[1]}"
        finally:
            listener.close()  # no new connections; the runner then stops the ones it has
    finally:
        await runner.cleanup()


async def until_signalled() -> signal.Signals:
    """Wait for SIGINT or SIGTERM. The handlers stay until the loop closes, so that a second signal (a
    terminal's Ctrl-C reaches every worker, and the parent forwards it too) does not break the bounded stop
    with a KeyboardInterrupt."""
    loop = asyncio.get_running_loop()
    received: asyncio.Future[signal.Signals] = loop.create_future()

    def arrived(sig: signal.Signals) -> None:
        if not received.done():
            received.set_result(sig)

    for sig in STOP_SIGNALS:
        loop.add_signal_handler(sig, arrived, sig)
    return await received


async def serve_until_signalled(
    app: web.Application,
    host: str,
    port: int,
    *,
    shutdown_timeout: float,
    header_timeout: float | None = None,
    keepalive_timeout: float | None = None,
    reuse_port: bool = False,
    ops: tuple[web.Application, str, int] | None = None,
) -> None:
    """`app` on host:port, and `ops` (the operators' app, host and port) beside it, until SIGINT or SIGTERM."""
    async with contextlib.AsyncExitStack() as listeners:
        url = await listeners.enter_async_context(
            serving(
                app,
                host,
                port,
                setting="--port or LIVE_GATEWAY_PORT",
                shutdown_timeout=shutdown_timeout,
                header_timeout=header_timeout,
                keepalive_timeout=keepalive_timeout,
                reuse_port=reuse_port,
            )
        )
        log.info("listening on %s (GraphQL at %s/graphql)", url, url)
        if ops is not None:
            ops_app, ops_host, ops_port = ops
            ops_url = await listeners.enter_async_context(
                serving(
                    ops_app,
                    ops_host,
                    ops_port,
                    setting="LIVE_GATEWAY_OPS_PORT",
                    shutdown_timeout=shutdown_timeout,
                    header_timeout=header_timeout,
                    keepalive_timeout=keepalive_timeout,
                    reuse_port=reuse_port,
                )
            )
            log.info("operators' listener on %s (/metrics, /readyz)", ops_url)
        from gateway.reload import reload_on_sighup  # the application's modules, loaded only to serve one

        settle_heap()
        stop_reloading = reload_on_sighup(app)
        try:
            received = await until_signalled()
        finally:
            stop_reloading()
        log.info("%s: stopping; requests in flight get %g s", received.name, shutdown_timeout)
    log.info("stopped")
