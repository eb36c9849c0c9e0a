"""Lifecycle verbs on one event: the vendor's endpoint, then the vendor's answer into the index, so that
a read after a write never shows the old state."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from gateway.model import Event, Source, utcnow
from gateway.store import Store
from gateway.vendors.base import SourceAdapter

Verb = Callable[[SourceAdapter, str], Awaitable[Event | None]]


class Lifecycle:
    def __init__(self, store: Store, adapters: dict[Source, SourceAdapter]) -> None:
        self.store = store
        self.adapters = adapters

    async def apply(self, source: Source, native_id: str, verb: Verb) -> Event | None:
        """Run `verb` at the vendor and keep what it answered; a deleted event stays indexed as deleted.

        The answer is stamped with when it came, not when the verb was sent: a read whose answer shows the
        event before the verb was asked before that moment, so its write-back, landing after this one,
        is old news and is dropped (stamped with when it was sent, a read answered meanwhile from the
        state before the verb would count as newer)."""
        event = await verb(self.adapters[source], native_id)
        answered_at = utcnow()
        if event is None:
            cached = (await self.store.events.get_many(source, [native_id])).get(native_id)
            if cached is None:
                return None
            event = cached.event.deleted()
        await self.store.events.put_many([event], fetched_at=answered_at)
        return event
