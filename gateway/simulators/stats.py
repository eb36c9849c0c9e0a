"""Counts of the requests each vendor answered, for tests and benchmarks to see what the gateway sent."""

from __future__ import annotations

from collections import Counter
from typing import Any

# A request that was never answered (the `hang` fault) is counted when it arrives, with this status.
UNANSWERED = 0


class RequestStats:
    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, str, int]] = Counter()

    def record(self, vendor: str, method: str, route: str, status: int) -> None:
        self._counts[(vendor, method, route, status)] += 1

    def clear(self) -> None:
        self._counts.clear()

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"vendor": vendor, "method": method, "route": route, "status": status, "count": count}
            for (vendor, method, route, status), count in sorted(self._counts.items())
        ]
