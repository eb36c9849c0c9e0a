"""Lifecycle verbs on one event: the vendor's endpoint, then the vendor's answer into the index, so that
a read after a write never shows the old state."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from pymongo.errors import PyMongoError

from gateway.model import Event, Source, utcnow
from gateway.store import Store
from gateway.store.health import is_unavailable
from gateway.vendors.base import SourceAdapter

log = logging.getLogger(__name__)

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
        # Refused before the vendor is asked while MongoDB does not answer: a verb the index cannot keep
        # would leave it telling the old state.
        self.store.health.check()
        event = await verb(self.adapters[source], native_id)
        answered_at = utcnow()
        if event is None:
            cached = (await self.store.events.get_many(source, [native_id])).get(native_id)
            if cached is None:
                return None
            event = cached.event.deleted()
        try:
            await self.store.events.put_many([event], fetched_at=answered_at)
        except PyMongoError as error:
            if not is_unavailable(error):
                raise
            # The vendor did it: the caller hears what it answered, not an error that invites a second
            # try. The index catches up at the next read or listing.
            self.store.health.failed(error)
            log.warning("the index missed %s %s's answer to a verb: MongoDB did not answer", source.value, native_id)
        return event
