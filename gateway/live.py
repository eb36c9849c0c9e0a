"""Live updates: this replica's subscribers, fed from the change feed that every replica writes.

Changes travel between replicas through MongoDB, so a change seen by any replica reaches the subscribers
of all of them. The hub always reads the feed in sequence order. Where MongoDB offers change streams (a
replica set), an insert into the feed wakes it at once; elsewhere (a standalone server, the embedded one)
it reads every poll interval, one indexed range read each time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from datetime import timedelta

from gateway.model import utcnow
from gateway.store.changes import Change, ChangeFeed

log = logging.getLogger(__name__)

#: how long a gap in the numbers is waited for: a writer took the number but has not inserted it yet
GAP_WAIT = timedelta(seconds=2)
QUEUE_SIZE = 1000


class ChangeHub:
    def __init__(
        self, feed: ChangeFeed, poll_interval: float, on_change: Callable[[Change], None] | None = None
    ) -> None:
        self.feed = feed
        self.poll_interval = poll_interval
        #: told of every change read, whichever replica made it (the store's read memo and the response cache
        #: forget then), watched or not
        self.on_change = on_change
        #: each subscriber's queue, and the last change made before it subscribed
        self._subscribers: dict[asyncio.Queue[Change | None], int] = {}
        self._last_seq = 0

    @property
    def subscriber_count(self) -> int:
        return len(self._subscribers)

    @contextlib.asynccontextmanager
    async def subscribe(self) -> AsyncIterator[asyncio.Queue[Change | None]]:
        queue: asyncio.Queue[Change | None] = asyncio.Queue(maxsize=QUEUE_SIZE)
        # A change made before the subscription began is not for it, even if the hub has not read it yet.
        self._subscribers[queue] = await self.feed.last_seq()
        try:
            yield queue
        finally:
            self._subscribers.pop(queue, None)

    async def run(self, stop: asyncio.Event) -> None:
        self._last_seq = await self.feed.last_seq()
        wake = asyncio.Event()
        watcher = asyncio.create_task(self._watch(wake), name="change-feed-watch")
        try:
            await self._follow(stop, wake)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher

    async def _watch(self, wake: asyncio.Event) -> None:
        try:
            if not await self.feed.can_watch():
                return
            log.info("change feed: following a change stream")
            async for _ in self.feed.watch_inserts():
                wake.set()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("change stream ended; the change feed is polled")

    async def _follow(self, stop: asyncio.Event, wake: asyncio.Event) -> None:
        gap_seen_at = None
        while not stop.is_set():
            try:
                for change in await self.feed.after(self._last_seq):
                    if change.seq != self._last_seq + 1:
                        now = utcnow()
                        gap_seen_at = gap_seen_at or now
                        if now - gap_seen_at < GAP_WAIT:
                            break  # read again from the gap next time
                        log.warning("change feed: numbers %d to %d never came", self._last_seq + 1, change.seq - 1)
                    gap_seen_at = None
                    self._last_seq = change.seq
                    if self.on_change is not None:
                        self.on_change(change)
                    if change.watched:
                        self._deliver(change)
            except Exception:
                log.exception("reading the change feed failed")
            waiting = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(wake.wait())]
            await asyncio.wait(waiting, timeout=self.poll_interval, return_when=asyncio.FIRST_COMPLETED)
            for task in waiting:
                task.cancel()
            wake.clear()

    def _deliver(self, change: Change) -> None:
        for queue, since in list(self._subscribers.items()):
            if change.seq <= since:
                continue
            try:
                queue.put_nowait(change)
            except asyncio.QueueFull:
                # A subscriber this far behind has stopped reading; it may not hold the rest up. Its queue
                # is emptied and ends with None, which ends its subscription.
                log.warning("a subscriber fell %d changes behind; ending it", QUEUE_SIZE)
                self._subscribers.pop(queue, None)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)
