"""The per-replica moving windows start no thread on a request: `limits`' memory storage starts a timer
thread on a hit whenever the last one has run out (10 ms after it began), which at a modest rate is nearly
every request. Expired entries are swept from the caller's own thread instead, at most once a second."""

from __future__ import annotations

import threading
import time

from gateway.auth import Principal
from gateway.ratelimit import CallerRateLimit
from gateway.settings import Role
from gateway.window_storage import LoopMemoryStorage


def timer_threads() -> int:
    return sum(1 for thread in threading.enumerate() if isinstance(thread, threading.Timer) and thread.is_alive())


def test_a_request_counted_in_the_rate_limit_starts_no_thread() -> None:
    limit = CallerRateLimit("100/minute")
    caller = Principal(name="caller-1", role=Role.VIEWER)
    time.sleep(0.05)  # the storage's first timer, started once when it was made, has run out
    started = []
    for _ in range(5):
        limit.check(caller)
        started.append(timer_threads())
        time.sleep(0.02)  # longer than the library's timer lives
    assert started == [0] * 5


def test_entries_that_left_their_window_are_swept_on_a_later_hit() -> None:
    now = [1000.0]
    storage = LoopMemoryStorage(sweep_every=1.0, clock=lambda: now[0])
    # Entries expire by the wall clock (the library's own), so the window is short and really waited for.
    storage.acquire_entry("old", limit=5, expiry=1)
    storage.acquire_entry("old", limit=5, expiry=1)
    assert len(storage.events["old"]) == 2
    time.sleep(1.05)
    storage.acquire_entry("new", limit=5, expiry=1)  # not due yet: nothing swept
    assert len(storage.events["old"]) == 2
    now[0] += 1.0
    storage.acquire_entry("new", limit=5, expiry=1)
    assert storage.events["old"] == []
    assert len(storage.events["new"]) == 2
