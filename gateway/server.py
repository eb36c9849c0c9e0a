"""Running an aiohttp application on a port: start, say where it listens, stop gracefully on a signal.

Stopping follows aiohttp's runner: the listening socket closes (no new connections), `on_shutdown` closes
the long-lived connections going away (`gateway.shutdown`), requests in flight get `shutdown_timeout`
seconds to finish, then the cleanup contexts run.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import signal
import socket
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from gateway.settings import ConfigurationError

log = logging.getLogger(__name__)

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


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


@contextlib.asynccontextmanager
async def serving(
    app: web.Application,
    host: str,
    port: int,
    *,
    setting: str = "--port",
    shutdown_timeout: float = 10.0,
    reuse_port: bool = False,
    prepare: Callable[[web.Application], Awaitable[object]] | None = None,
) -> AsyncIterator[str]:
    """`app` on host:port until the block ends, which gets the URL it listens at. `prepare` runs once the
    app has started, before the first connection is accepted; `setting` names where the port came from in
    the error when it cannot be had."""
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=shutdown_timeout)
    await runner.setup()
    try:
        if prepare is not None:
            await prepare(app)
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        try:
            await site.start()
        except OSError as exc:
            raise cannot_listen(host, port, exc, setting) from None
        bound = runner.addresses[0] if runner.addresses else (host, port)
        url = f"http://{host}:{bound[1]}"
        yield url
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
    app: web.Application, host: str, port: int, *, shutdown_timeout: float, reuse_port: bool = False
) -> None:
    async with serving(
        app, host, port, setting="--port or LIVE_GATEWAY_PORT", shutdown_timeout=shutdown_timeout, reuse_port=reuse_port
    ) as url:
        log.info("listening on %s (GraphQL at %s/graphql)", url, url)
        from gateway.reload import reload_on_sighup  # the application's modules, loaded only to serve one

        stop_reloading = reload_on_sighup(app)
        try:
            received = await until_signalled()
        finally:
            stop_reloading()
        log.info("%s: stopping; requests in flight get %g s", received.name, shutdown_timeout)
    log.info("stopped")
