"""Keeps the MongoDB events index fresh from the vendors' list endpoints.

On demand, a `liveEvents` read re-lists a source whose listing is older than the refresh interval; in
the background, one replica at a time (the holder of a lease in MongoDB) re-lists every source.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime, timedelta

from gateway.background import repeat
from gateway.errors import VendorError
from gateway.model import Event, Source, utcnow
from gateway.store import Store
from gateway.vendors.base import SourceAdapter

log = logging.getLogger(__name__)

REFRESHER_LEASE = "index-refresher"
#: how long a failed listing is not tried again on demand: a vendor that hangs must not make every
#: request that reads its source wait out the timeout in turn
RELIST_BACKOFF = timedelta(seconds=5)


class EventIndex:
    def __init__(self, store: Store, adapters: dict[Source, SourceAdapter], refresh_interval: float) -> None:
        self.store = store
        self.adapters = adapters
        self.refresh_interval = timedelta(seconds=refresh_interval)
        self.holder = uuid.uuid4().hex
        self._listed_at: dict[Source, datetime] = {}
        self._failed: dict[Source, tuple[datetime, VendorError]] = {}
        self._locks = {source: asyncio.Lock() for source in adapters}

    def listable(self, sources: Iterable[Source] | None = None) -> list[Source]:
        chosen = self.adapters if sources is None else sources
        return [s for s in chosen if s in self.adapters and self.adapters[s].can_list]

    async def ensure_fresh(self, sources: Iterable[Source] | None = None) -> dict[Source, VendorError]:
        """Re-list every listable source whose listing is too old; the failures, by source (a listing
        that failed a moment ago counts as failed again, without asking the vendor)."""
        # What follows reads the store, and a listing is written into it: while MongoDB does not answer,
        # the caller is refused at once, and no vendor is asked for a listing that could not be kept.
        self.store.health.check()
        stale = [s for s in self.listable(sources) if not self._known_fresh(s)]
        if not stale:
            return {}
        outcomes = await asyncio.gather(*(self._refresh_if_stale(s) for s in stale))
        return {source: error for source, error in zip(stale, outcomes, strict=True) if error is not None}

    def fresh_until(self, sources: Iterable[Source]) -> datetime | None:
        """When the first of these sources' listings is due to be read again; None when one of them is not
        known to be fresh (it failed, or this replica has not seen it listed)."""
        listed = [self._listed_at.get(source) for source in self.listable(sources)]
        if any(listed_at is None for listed_at in listed):
            return None
        return min(
            (at + self.refresh_interval for at in listed if at is not None), default=datetime.max.replace(tzinfo=UTC)
        )

    def _recent_failure(self, source: Source) -> VendorError | None:
        failed = self._failed.get(source)
        if failed is None or utcnow() - failed[0] >= min(RELIST_BACKOFF, self.refresh_interval):
            return None
        return failed[1]

    def _known_fresh(self, source: Source) -> bool:
        listed_at = self._listed_at.get(source)
        return listed_at is not None and utcnow() - listed_at < self.refresh_interval

    async def _refresh_if_stale(self, source: Source) -> VendorError | None:
        # One refresh per source at a time in this process; whoever waited finds it fresh.
        if (failure := self._recent_failure(source)) is not None:
            return failure
        async with self._locks[source]:
            if self._known_fresh(source):
                return None
            # Whoever waited on a listing that just failed shares its failure.
            if (failure := self._recent_failure(source)) is not None:
                return failure
            listed_at = await self.store.listings.listed_at(source)
            if listed_at is not None and utcnow() - listed_at < self.refresh_interval:
                self._listed_at[source] = listed_at
                return None
            try:
                await self.refresh(source)
            except VendorError as error:
                log.warning("listing %s failed: %r", source.value, error)
                self._failed[source] = (utcnow(), error)
                return error
            self._failed.pop(source, None)
            return None

    async def refresh(self, source: Source) -> int:
        """Walk the vendor's whole listing of `source` into the index; the number of events seen."""
        adapter = self.adapters[source]
        started = utcnow()
        seen: list[str] = []
        cursor: str | None = None
        while True:
            asked_at = utcnow()
            page = await adapter.list_page(cursor)
            if page.events:
                await self.store.events.put_many(page.events, fetched_at=asked_at)
                seen.extend(e.native_id for e in page.events)
            cursor = page.next_cursor
            if not cursor:
                break
        await self.store.events.mark_missing(source, seen, started)
        await self.store.listings.record_listing(source, started)
        self._listed_at[source] = started
        return len(seen)

    async def refresh_round(self) -> bool:
        """Re-list every listable source if this replica holds (or can take) the refresher lease."""
        ttl = self.refresh_interval.total_seconds() * 3
        if not await self.store.leases.acquire(REFRESHER_LEASE, self.holder, ttl_seconds=ttl):
            return False
        for source in self.listable():
            try:
                await self.refresh(source)
            except VendorError as error:
                log.warning("background listing of %s failed: %r", source.value, error)
        for source in self.adapters.keys() - set(self.listable()):
            await self.reread_unfinished(source)
        return True

    async def reread_unfinished(self, source: Source) -> int:
        """Read again the indexed events of a source that cannot be listed (Loop calls) and have not
        finished, so that the index follows them too; the number read."""
        return await self.learn(source, await self.store.events.unfinished_ids(source))

    async def learn(self, source: Source, native_ids: Sequence[str]) -> int:
        """Read these events by id from the vendor into the index; the number the vendor answered.

        This is how events of a source that cannot be listed (Loop calls made elsewhere) get into listings
        and counts when their ids are known; an id the vendor does not know, or cannot answer for now, is
        left out and the others go in.
        """
        if not native_ids:
            return 0
        asked_at = utcnow()
        outcomes = await self.adapters[source].fetch_many(list(native_ids))
        fresh = [outcome for outcome in outcomes if isinstance(outcome, Event)]
        if fresh:
            await self.store.events.put_many(fresh, fetched_at=asked_at)
        return len(fresh)

    async def run_refresher(self, stop: asyncio.Event) -> None:
        """A refresh round each half interval, for as long as the application runs: a round's listings
        are then never older than the interval, so requests find the index fresh and do not list the
        vendors themselves."""
        await repeat(stop, self.refresh_interval.total_seconds() / 2, self.refresh_round, "index refresher round")
        with contextlib.suppress(Exception):
            await self.store.leases.release(REFRESHER_LEASE, self.holder)
