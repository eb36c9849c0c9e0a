"""MongoDB: the events index, source listings, leases, the operation journal, claims and idempotency
records."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from pymongo import AsyncMongoClient, monitoring

from gateway.store.changes import ChangeFeed
from gateway.store.claims import Claims
from gateway.store.documents import Documents
from gateway.store.events import EventStore
from gateway.store.health import StoreHealth
from gateway.store.idempotency import IdempotencyRecords
from gateway.store.journal import OperationJournal
from gateway.store.leases import Leases
from gateway.store.mongo import Database
from gateway.store.ratelimits import SharedWindows
from gateway.store.sources import SourceListings
from gateway.store.webhooks import WebhookDeliveries


class Store:
    def __init__(self, db: Database, memo_ttl: float = 0.0, write_delay: float = 0.0) -> None:
        self.db = db
        #: whether MongoDB answers, as far as this replica knows
        self.health = StoreHealth(self.ping)
        self.changes = ChangeFeed(db)
        self.events = EventStore(db, feed=self.changes, memo_ttl=memo_ttl, write_delay=write_delay, health=self.health)
        self.leases = Leases(db)
        self.listings = SourceListings(db)
        self.journal = OperationJournal(db)
        self.claims = Claims(db)
        self.idempotency = IdempotencyRecords(db)
        self.webhooks = WebhookDeliveries(db)
        self.documents = Documents(db)
        self.windows = SharedWindows(db, self.health)

    async def ensure_indexes(self) -> None:
        await self.events.ensure_indexes()
        await self.changes.ensure_indexes()
        await self.leases.ensure_indexes()
        await self.journal.ensure_indexes()
        await self.idempotency.ensure_indexes()
        await self.webhooks.ensure_indexes()
        await self.documents.ensure_indexes()
        await self.windows.ensure_indexes()

    async def ping(self) -> float:
        """The server's round-trip time in seconds; raises `PyMongoError` when it does not answer."""
        started = time.perf_counter()
        await self.db.command("ping")
        return time.perf_counter() - started


def connect(
    uri: str,
    database: str,
    memo_ttl: float = 0.0,
    write_delay: float = 0.0,
    timeout: float | None = None,
    event_listeners: Sequence[monitoring.CommandListener] = (),
) -> tuple[AsyncMongoClient[dict[str, Any]], Store]:
    """A client (the caller closes it) and the store over `database`; `memo_ttl`: see `ReadMemo`;
    `write_delay`: see `EventStore`; `timeout`: the seconds any one store operation may take, finding a
    server and connecting included (None: the driver's defaults, 30 s to find a server); `event_listeners`:
    told of every command (tracing)."""
    options: dict[str, Any] = {}
    if timeout is not None:
        # `timeoutMS` bounds each operation as a whole (its server selection, connection and retries);
        # server selection and connecting get no longer, so that nothing waits past it.
        milliseconds = max(1, int(timeout * 1000))
        options.update(timeoutMS=milliseconds, serverSelectionTimeoutMS=milliseconds, connectTimeoutMS=milliseconds)
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(
        uri, tz_aware=True, event_listeners=event_listeners, **options
    )
    return client, Store(client[database], memo_ttl, write_delay)
