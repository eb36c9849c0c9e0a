"""Streamloop's rate limit: a fixed number of requests per credential per clock minute."""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

WINDOW_SECONDS = 60


@dataclass(frozen=True)
class Quota:
    limit: int
    remaining: int
    reset_seconds: int  # until the window ends
    allowed: bool

    def headers(self) -> dict[str, str]:
        return {
            "RateLimit-Limit": str(self.limit),
            "RateLimit-Remaining": str(self.remaining),
            "RateLimit-Reset": str(self.reset_seconds),
        }


class FixedWindowLimiter:
    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self._windows: dict[str, tuple[int, int]] = {}  # caller -> (window number, requests in it)

    def take(self, caller: str, now: datetime) -> Quota:
        """Count one request against `caller` and say whether it may proceed."""
        epoch_seconds = now.timestamp()
        window = math.floor(epoch_seconds / WINDOW_SECONDS)
        seen_window, used = self._windows.get(caller, (window, 0))
        if seen_window != window:
            used = 0
        used += 1
        self._windows[caller] = (window, used)
        reset = max(1, math.ceil((window + 1) * WINDOW_SECONDS - epoch_seconds))
        return Quota(
            limit=self.per_minute,
            remaining=max(0, self.per_minute - used),
            reset_seconds=reset,
            allowed=used <= self.per_minute,
        )
