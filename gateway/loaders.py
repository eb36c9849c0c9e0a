"""The per-request DataLoader of events, reading through the MongoDB cache.

One loader serves every source, so that a batch (every event one query asks for, whatever its source)
costs one `$in` read of the cache; fresh entries cost no vendor call; the misses are fetched from their
vendors concurrently (a source whose list endpoint serves a batch in one call does so) and written back
after the answer, gathered with other answers' write-backs into one bulk write. When a vendor fails, a
cached copy is served marked stale; an error only when nothing is cached. Where no cached copy can be fresh
enough, the vendors are asked first, and the cache is read beside them only for events this process does not
know the stored values of.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from aiodataloader import DataLoader
from pymongo.errors import PyMongoError

from gateway.errors import VendorError
from gateway.model import Event, Source, utcnow
from gateway.observability import Metrics
from gateway.store import Store
from gateway.store.events import CachedEvent
from gateway.store.health import is_unavailable
from gateway.types.enums import ServedFrom
from gateway.types.events import Loaded
from gateway.vendors.base import SourceAdapter

#: an event's key in the loader: its source and the vendor's id
EventKey = tuple[Source, str]
LoadResult = Loaded | None | VendorError


class MissingIds:
    """Ids a vendor said it does not have (and the cache never held), per source: answered as missing without
    asking again for the source's `not_found_for` seconds, so that asking for made-up ids over and over costs
    the vendor one call each, not one per request."""

    #: ids remembered at most (the oldest are forgotten first)
    MAX_IDS = 100_000

    def __init__(self, ttl: Mapping[Source, float], clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._until: dict[EventKey, float] = {}

    def knows(self, key: EventKey) -> bool:
        until = self._until.get(key)
        if until is None:
            return False
        if self._clock() < until:
            return True
        del self._until[key]
        return False

    def remember(self, key: EventKey) -> None:
        ttl = self.ttl.get(key[0], 0.0)
        if ttl <= 0:
            return
        self._until.pop(key, None)
        if len(self._until) >= self.MAX_IDS:
            self._until.pop(next(iter(self._until)))
        self._until[key] = self._clock() + ttl

    def forget(self, key: EventKey) -> None:
        self._until.pop(key, None)


#: tasks between a read and its vendor calls being sent: one per source asked, then one per call
VENDOR_CALL_TASK_DEPTH = 2


def _failed(
    misses: dict[Source, list[str]], answers: list[list[Event | VendorError | None]], among: Mapping[EventKey, Any]
) -> list[EventKey]:
    """The keys `among` whose vendor gave no event: a failure (the cached copy is served, stale) or none
    there (the cached event is marked deleted)."""
    failed = []
    for (source, native_ids), outcomes in zip(misses.items(), answers, strict=True):
        for native_id, outcome in zip(native_ids, outcomes, strict=True):
            if (source, native_id) in among and not isinstance(outcome, Event):
                failed.append((source, native_id))
    return failed


class EventLoader(DataLoader):  # type: ignore[misc]
    def __init__(
        self,
        adapters: dict[Source, SourceAdapter],
        store: Store,
        fresh_for: dict[Source, float],
        metrics: Metrics | None = None,
        missing: MissingIds | None = None,
    ) -> None:
        super().__init__()
        self.adapters = adapters
        self.store = store
        self.fresh_for = fresh_for
        self.metrics = metrics
        self.missing = missing or MissingIds({})

    async def batch_load_fn(self, keys: Sequence[EventKey]) -> list[LoadResult]:
        now = utcnow()
        # An id of a source with no adapter, or one its vendor cannot have, is no event: nobody is asked.
        served = list(
            dict.fromkeys(
                key for key in keys if key[0] in self.adapters and self.adapters[key[0]].client.is_native_id(key[1])
            )
        )
        results: dict[EventKey, LoadResult] = {}
        misses: dict[Source, list[str]] = {}
        # Ids a vendor said lately it does not have are not asked again (a cached copy is still served).
        known_missing = {key for key in served if self.missing.knows(key)}
        if all(self.fresh_for[source] == 0 for source, _ in served):
            # No cached copy can be fresh enough, so the vendors are asked at once. What their answers may
            # leave to the cache (values of `extra` an answer does not know) is what this process stored last
            # of each event, while it knows that; the others' cached copies are read meanwhile, and a known
            # one's only if its vendor gives no event.
            for source, native_id in served:
                if (source, native_id) not in known_missing:
                    misses.setdefault(source, []).append(native_id)
            remembered = self._remembered(served, known_missing)
            beside = [key for key in served if key not in remembered]
            if beside:
                answers, cached = await asyncio.gather(self._ask(misses), self._cached_behind_vendor_calls(beside))
            else:
                answers, cached = await self._ask(misses), {}
            after = _failed(misses, answers, remembered)
            if after:
                cached.update(await self._cached(after))
        else:
            cached = await self._cached(served)
            for key in served:
                hit = cached.get(key)
                if hit is not None and hit.age(now) <= self.fresh_for[key[0]]:
                    results[key] = Loaded(hit.event, hit.fetched_at, ServedFrom.CACHE)
                elif key not in known_missing:
                    misses.setdefault(key[0], []).append(key[1])
            answers = await self._ask(misses)
            remembered = {}
        for key in known_missing - results.keys():
            hit = cached.get(key)
            results[key] = None if hit is None else Loaded(hit.event, hit.fetched_at, ServedFrom.CACHE)
        if self.metrics:
            for source in {key[0] for key in served}:
                self.metrics.cache(source, "hit", sum(1 for key in results if key[0] is source))
                self.metrics.cache(source, "miss", len(misses.get(source, ())))
        if misses:
            writes = self._take_answers(misses, answers, cached, remembered, results, now)
            if self.store.health.available:  # else the write-back could only fail, after the store timeout
                self.store.events.put_many_later(writes, fetched_at=now)
        return [results.get(key) for key in keys]

    def _remembered(self, keys: list[EventKey], known_missing: set[EventKey]) -> dict[EventKey, dict[str, Any]]:
        """The `extra` this process stored last of each of `keys` it knows that of (`EventStore.stored_extra`),
        but for ids a vendor said lately it does not have (their cached copies are served)."""
        remembered = {}
        for key in keys:
            if key not in known_missing and (stored := self.store.events.stored_extra(*key)) is not None:
                remembered[key] = stored
        return remembered

    async def _cached_behind_vendor_calls(self, keys: list[EventKey]) -> dict[EventKey, CachedEvent]:
        """`_cached`, begun once the vendor calls started beside it have been sent.

        The cached copies are needed only once the vendors answer, and the read is sent in the time it takes
        to encode it; the vendor calls are each sent from a task of their own (one per source asked, then
        one per call, see `InFlight`), which the event loop runs in the order they were made. Letting the
        loop turn that many times first keeps the read off the vendor calls' way: it is encoded and sent while
        they are out, not before they leave.
        """
        for _ in range(VENDOR_CALL_TASK_DEPTH):
            await asyncio.sleep(0)
        return await self._cached(keys)

    async def _cached(self, keys: list[EventKey]) -> dict[EventKey, CachedEvent]:
        """The cached copies of `keys`; none while MongoDB does not answer, so that the vendors answer."""
        health = self.store.health
        if not health.available:
            return {}
        try:
            return await self.store.events.get_keys(keys)
        except PyMongoError as error:
            if not is_unavailable(error):
                raise
            health.failed(error)
            return {}

    async def _ask(self, misses: dict[Source, list[str]]) -> list[list[Event | VendorError | None]]:
        if len(misses) == 1:
            # One source asked: awaited in place, without a task of its own.
            ((source, ids),) = misses.items()
            return [await self.adapters[source].fetch_many(ids)]
        return list(await asyncio.gather(*(self.adapters[s].fetch_many(ids) for s, ids in misses.items())))

    def _take_answers(
        self,
        misses: dict[Source, list[str]],
        answers: list[list[Event | VendorError | None]],
        cached: dict[EventKey, CachedEvent],
        remembered: dict[EventKey, dict[str, Any]],
        results: dict[EventKey, LoadResult],
        now: datetime,
    ) -> list[Event]:
        sources = list(misses)
        writes: list[Event] = []
        for source, outcomes in zip(sources, answers, strict=True):
            for native_id, outcome in zip(misses[source], outcomes, strict=True):
                key = (source, native_id)
                hit = cached.get(key)
                if isinstance(outcome, Event):
                    self.missing.forget(key)
                    earlier = hit.event.extra if hit is not None else remembered.get(key)
                    if earlier is not None:
                        # What is known stays known, as in the store.
                        outcome.extra = outcome.extra_over(earlier)
                    writes.append(outcome)
                    results[key] = Loaded(outcome, now, ServedFrom.VENDOR)
                elif outcome is None:
                    # The vendor no longer has it: an event we knew becomes a deleted one, so that the
                    # index and this read agree; one we never knew does not exist.
                    if hit is None:
                        results[key] = None
                        self.missing.remember(key)
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
