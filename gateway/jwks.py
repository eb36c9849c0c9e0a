"""RS256 public keys from a JWKS URL (`LIVE_GATEWAY_AUTH__JWKS_URL`): cached in memory, fetched again on a
schedule and when a token names a key the cache does not hold, at most once per `jwks_min_refetch` seconds
however many such tokens arrive; concurrent asks share one fetch. A fetch that fails keeps the keys held."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import jwt

log = logging.getLogger(__name__)


class JwksFetchError(Exception):
    """The JWKS URL did not answer with a key set."""


class JwksKeys:
    def __init__(
        self,
        url: str | None,
        refresh_interval: float,
        min_refetch: float,
        on_change: Callable[[], None] = lambda: None,
        timeout: float = 5.0,
    ) -> None:
        #: where the key set is read; None: no JWKS URL (the keys stay empty)
        self.url = url
        self.on_change = on_change
        self.refresh_interval = refresh_interval
        self.min_refetch = min_refetch
        self.timeout = timeout
        #: key id -> public key, as last read
        self.keys: dict[str | None, Any] = {}
        self.fetches = 0
        self._fetched_at: float | None = None
        self._session: aiohttp.ClientSession | None = None
        self._fetching: asyncio.Task[bool] | None = None

    async def refresh(self) -> bool:
        """Reads the key set now (joining a read under way); True when the keys changed."""
        if self.url is None:
            return False
        if self._fetching is None:
            self._fetching = asyncio.ensure_future(self._fetch())
            self._fetching.add_done_callback(lambda _: setattr(self, "_fetching", None))
        return await asyncio.shield(self._fetching)

    async def refresh_for(self, kid: str | None) -> bool:
        """After a token named `kid`, which the cache lacks: read the key set again unless it was read less
        than `min_refetch` seconds ago; True when the key is held now."""
        if kid in self.keys:
            return True
        if self.url is None:
            return False
        recent = self._fetched_at is not None and time.monotonic() - self._fetched_at < self.min_refetch
        if recent and self._fetching is None:
            return False
        try:
            await self.refresh()
        except JwksFetchError as exc:
            log.warning("JWKS at %s could not be read for key %r: %s", self.url, kid, exc)
            return False
        return kid in self.keys

    async def _fetch(self) -> bool:
        assert self.url is not None
        self._fetched_at = time.monotonic()
        self.fetches += 1
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.get(self.url, timeout=aiohttp.ClientTimeout(total=self.timeout)) as resp:
                if resp.status != 200:
                    raise JwksFetchError(f"HTTP {resp.status}")
                body = await resp.text()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise JwksFetchError(f"{type(exc).__name__}: {exc}") from exc
        try:
            keys = {key.key_id: key.key for key in jwt.PyJWKSet.from_json(body).keys}
        except (jwt.PyJWKSetError, jwt.PyJWKError, ValueError) as exc:
            raise JwksFetchError(f"not a usable key set: {exc}") from exc
        changed = set(keys) != set(self.keys)
        self.keys = keys
        if changed:
            log.info("JWKS at %s: key ids now %s", self.url, sorted(str(kid) for kid in keys))
            self.on_change()
        return changed

    def forget(self, url: str | None) -> None:
        """Another URL (settings reloaded): the keys held are dropped, to be read from there."""
        if url != self.url:
            self.url = url
            self.keys = {}
            self._fetched_at = None
            self.on_change()

    async def run(self, stop: asyncio.Event) -> None:
        """Reads the key set every `refresh_interval` seconds until `stop`."""
        while not stop.is_set():
            try:
                await asyncio.wait_for(stop.wait(), timeout=self.refresh_interval)
            except TimeoutError:
                try:
                    await self.refresh()
                except JwksFetchError as exc:
                    log.warning("JWKS at %s could not be read (keeping the keys held): %s", self.url, exc)

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()


@contextlib.asynccontextmanager
async def jwks_lifecycle(keys: JwksKeys) -> AsyncIterator[None]:
    """Reads the key set at start (a failure is logged, not fatal: API keys and other keys still work), then
    on the schedule, until the application stops."""
    try:
        await keys.refresh()
    except JwksFetchError as exc:
        assert keys.url is not None
        log.error("JWKS at %s could not be read at start: %s; tokens it signs are refused until it is", keys.url, exc)
    stop = asyncio.Event()
    task = asyncio.ensure_future(keys.run(stop))
    try:
        yield
    finally:
        stop.set()
        await task
        await keys.close()
