"""Counts of the requests each vendor answered, for tests and benchmarks to see what the gateway sent."""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Mapping
from typing import Any

# A request that was never answered (the `hang` fault) is counted when it arrives, with this status.
UNANSWERED = 0
#: the most recent requests whose trace headers are kept, for tests to see what a caller's trace became
RECENT = 500
#: the headers that tie a vendor request to the request of the gateway's caller
TRACE_HEADERS = ("traceparent", "tracestate", "X-Request-Id")


class RequestStats:
    def __init__(self) -> None:
        self._counts: Counter[tuple[str, str, str, int]] = Counter()
        self._recent: deque[dict[str, Any]] = deque(maxlen=RECENT)

    def record(
        self, vendor: str, method: str, route: str, status: int, headers: Mapping[str, str] | None = None
    ) -> None:
        self._counts[(vendor, method, route, status)] += 1
        if headers is not None:
            traced = {name: headers[name] for name in TRACE_HEADERS if name in headers}
            self._recent.append({"vendor": vendor, "method": method, "route": route, "headers": traced})

    def clear(self) -> None:
        self._counts.clear()
        self._recent.clear()

    def recent(self) -> list[dict[str, Any]]:
        """The last requests (oldest first) with the trace headers they came with."""
        return list(self._recent)

    def rows(self) -> list[dict[str, Any]]:
        return [
            {"vendor": vendor, "method": method, "route": route, "status": status, "count": count}
            for (vendor, method, route, status), count in sorted(self._counts.items())
        ]
