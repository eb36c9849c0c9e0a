"""The memory the per-replica moving windows are counted in: `limits`' own, without its timer thread.

`limits.storage.MemoryStorage` drops expired entries from a `threading.Timer` it starts on a hit whenever
the last one has run out (10 ms after it started): at any rate below a hundred requests a second, nearly
every request starts a thread, and the thread then takes the GIL from the event loop. Here the expired
entries are dropped from the loop instead, at most once a `sweep_every` seconds, on a hit.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from limits.storage import MemoryStorage


class LoopMemoryStorage(MemoryStorage):
    """`MemoryStorage`, swept from the caller's own thread rather than from a timer thread per hit."""

    def __init__(self, sweep_every: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        super().__init__()  # starts one timer, once, as the library does
        self.sweep_every = sweep_every
        self._clock = clock
        self._next_sweep = clock() + sweep_every

    def _MemoryStorage__schedule_expiry(self) -> None:
        # Called by the library on every hit: the sweep is due by time, not started as a thread.
        now = self._clock()
        if now >= self._next_sweep:
            self._next_sweep = now + self.sweep_every
            self.sweep()

    def sweep(self) -> None:
        """Drop every entry that has left its window (and the keys left with none)."""
        self._MemoryStorage__expire_events()  # type: ignore[attr-defined]
