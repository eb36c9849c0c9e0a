"""Answers of recent reads of the events index, kept in this process for a moment.

A dashboard asks for the same page, and a frontend for the same events, many times a second; for `ttl`
seconds they are answered from memory. Any write this process makes to the index, and any change it reads
from the change feed (another replica's write), drops everything; another replica's write that the feed
does not carry (a title, say) shows within `ttl`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any

#: what a memo holds at most; past it, the oldest answers go first
MAX_ENTRIES = 4096


class ReadMemo:
    def __init__(self, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self._clock = clock
        self._entries: dict[Hashable, tuple[float, Any]] = {}
        self._generation = 0

    @property
    def enabled(self) -> bool:
        return self.ttl > 0

    @property
    def generation(self) -> int:
        """Taken before a read, and given back with its answer: an answer read across a write is not kept."""
        return self._generation

    def get(self, key: Hashable) -> Any | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        stored_at, value = entry
        if self._clock() - stored_at >= self.ttl:
            del self._entries[key]
            return None
        return value

    def put(self, key: Hashable, value: Any, generation: int) -> None:
        if not self.enabled or generation != self._generation:
            return
        if len(self._entries) >= MAX_ENTRIES:
            self._entries.pop(next(iter(self._entries)))
        self._entries[key] = (self._clock(), value)

    def invalidate(self) -> None:
        self._generation += 1
        self._entries.clear()
