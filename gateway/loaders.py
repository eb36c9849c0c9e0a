"""The per-request DataLoader of events, reading through the MongoDB cache.

One loader serves every source, so that a batch (every event one query asks for, whatever its source)
costs one `$in` read of the cache; fresh entries cost no vendor call; the misses are fetched from their
vendors concurrently (a source whose list endpoint serves a batch in one call does so) and written back
in one bulk write, which the answer does not wait for. When a vendor fails, a cached copy is served
marked stale; an error only when nothing is cached.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import datetime

from aiodataloader import DataLoader

from gateway.errors import VendorError
from gateway.model import Event, Source, utcnow
from gateway.observability import Metrics
from gateway.store import Store
from gateway.store.events import CachedEvent
from gateway.types.enums import ServedFrom
from gateway.types.events import Loaded
from gateway.vendors.base import SourceAdapter

#: an event's key in the loader: its source and the vendor's id
EventKey = tuple[Source, str]
LoadResult = Loaded | None | VendorError


class EventLoader(DataLoader):  # type: ignore[misc]
    def __init__(
        self,
        adapters: dict[Source, SourceAdapter],
        store: Store,
        fresh_for: dict[Source, float],
        metrics: Metrics | None = None,
    ) -> None:
        super().__init__()
        self.adapters = adapters
        self.store = store
        self.fresh_for = fresh_for
        self.metrics = metrics

    async def batch_load_fn(self, keys: Sequence[EventKey]) -> list[LoadResult]:
        now = utcnow()
        served = [key for key in keys if key[0] in self.adapters]  # a source not served here has no events
        cached = await self.store.events.get_keys(served)
        results: dict[EventKey, LoadResult] = {}
        misses: dict[Source, list[str]] = {}
        for key in dict.fromkeys(served):
            hit = cached.get(key)
            if hit is not None and hit.age(now) <= self.fresh_for[key[0]]:
                results[key] = Loaded(hit.event, hit.fetched_at, ServedFrom.CACHE)
            else:
                misses.setdefault(key[0], []).append(key[1])
        if self.metrics:
            for source in {key[0] for key in served}:
                self.metrics.cache(source, "hit", sum(1 for key in results if key[0] is source))
                self.metrics.cache(source, "miss", len(misses.get(source, ())))
        if misses:
            writes = await self._fetch_misses(misses, cached, results, now)
            self.store.events.put_many_later(writes, fetched_at=now)
        return [results.get(key) for key in keys]

    async def _fetch_misses(
        self,
        misses: dict[Source, list[str]],
        cached: dict[EventKey, CachedEvent],
        results: dict[EventKey, LoadResult],
        now: datetime,
    ) -> list[Event]:
        sources = list(misses)
        answers = await asyncio.gather(*(self.adapters[s].fetch_many(misses[s]) for s in sources))
        writes: list[Event] = []
        for source, outcomes in zip(sources, answers, strict=True):
            for native_id, outcome in zip(misses[source], outcomes, strict=True):
                key = (source, native_id)
                hit = cached.get(key)
                if isinstance(outcome, Event):
                    if hit is not None:
                        # A batch read through a listing can lack fields the detail endpoint gave
                        # (Livepush's chat and embed ids): what is known stays known, as in the store.
                        known = {k: v for k, v in outcome.extra.items() if v is not None}
                        outcome.extra = {**hit.event.extra, **known}
                    writes.append(outcome)
                    results[key] = Loaded(outcome, now, ServedFrom.VENDOR)
                elif outcome is None:
                    # The vendor no longer has it: an event we knew becomes a deleted one, so that the
                    # index and this read agree; one we never knew does not exist.
                    if hit is None:
                        results[key] = None
                    else:
                        gone = hit.event.deleted()
                        writes.append(gone)
                        results[key] = Loaded(gone, now, ServedFrom.VENDOR)
                elif hit is not None:
                    results[key] = Loaded(hit.event, hit.fetched_at, ServedFrom.CACHE, stale=True)
                    if self.metrics:
                        self.metrics.cache(source, "stale", 1)
                else:
                    results[key] = outcome
        return writes
