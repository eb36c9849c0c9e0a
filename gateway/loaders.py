"""Per-request DataLoaders, one per source, reading through the MongoDB cache.

A batch costs one `$in` read of the cache; fresh entries cost no vendor call; the misses are fetched
from the vendor concurrently (or in one list call where the adapter can) and written back in one bulk
write. When the vendor fails, a cached copy is served marked stale; an error only when nothing is cached.
"""

from __future__ import annotations

from collections.abc import Sequence

from aiodataloader import DataLoader

from gateway.errors import VendorError
from gateway.model import Event, Source, utcnow
from gateway.observability import Metrics
from gateway.store import Store
from gateway.types.enums import ServedFrom
from gateway.types.events import Loaded
from gateway.vendors.base import SourceAdapter

LoadResult = Loaded | None | VendorError


class SourceLoader(DataLoader):  # type: ignore[misc]
    def __init__(self, adapter: SourceAdapter, store: Store, fresh_for: float, metrics: Metrics | None = None) -> None:
        super().__init__()
        self.adapter = adapter
        self.store = store
        self.fresh_for = fresh_for
        self.metrics = metrics

    @property
    def source(self) -> Source:
        return self.adapter.source

    async def batch_load_fn(self, native_ids: Sequence[str]) -> list[LoadResult]:
        now = utcnow()
        cached = await self.store.events.get_many(self.source, list(native_ids))
        results: dict[str, LoadResult] = {}
        misses: list[str] = []
        for native_id in native_ids:
            hit = cached.get(native_id)
            if hit is not None and hit.age(now) <= self.fresh_for:
                results[native_id] = Loaded(hit.event, hit.fetched_at, ServedFrom.CACHE)
            else:
                misses.append(native_id)
        if self.metrics:
            self.metrics.cache(self.source, "hit", len(results))
            self.metrics.cache(self.source, "miss", len(misses))
        if not misses:
            return [results[i] for i in native_ids]

        outcomes = await self.adapter.fetch_many(misses)
        writes: list[Event] = []
        for native_id, outcome in zip(misses, outcomes, strict=True):
            hit = cached.get(native_id)
            if isinstance(outcome, Event):
                if hit is not None:
                    # A batch read through a listing can lack fields the detail endpoint gave
                    # (Livepush's chat and embed ids): what is known stays known, as in the store.
                    outcome.extra = {**hit.event.extra, **{k: v for k, v in outcome.extra.items() if v is not None}}
                writes.append(outcome)
                results[native_id] = Loaded(outcome, now, ServedFrom.VENDOR)
            elif outcome is None:
                # The vendor no longer has it: an event we knew becomes a deleted one, so that the
                # index and this read agree; one we never knew does not exist.
                if hit is None:
                    results[native_id] = None
                else:
                    gone = hit.event.deleted()
                    writes.append(gone)
                    results[native_id] = Loaded(gone, now, ServedFrom.VENDOR)
            elif hit is not None:
                results[native_id] = Loaded(hit.event, hit.fetched_at, ServedFrom.CACHE, stale=True)
                if self.metrics:
                    self.metrics.cache(self.source, "stale", 1)
            else:
                results[native_id] = outcome
        if writes:
            await self.store.events.put_many(writes, fetched_at=now)
        return [results[i] for i in native_ids]


def build_loaders(
    adapters: dict[Source, SourceAdapter], store: Store, fresh_for: dict[Source, float], metrics: Metrics | None = None
) -> dict[Source, SourceLoader]:
    return {source: SourceLoader(adapter, store, fresh_for[source], metrics) for source, adapter in adapters.items()}
