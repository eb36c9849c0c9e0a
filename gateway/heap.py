"""The cyclic garbage collector, set for a server whose requests make no cycles.

A request's objects are freed by reference counting as its answer goes out (see `gateway.executor`), so
the collector finds next to nothing. What it costs is the looking: at CPython's default threshold it ran
every few hundred allocations, several times per request, each time going over every request in flight
and, every so often, over everything the process holds (schema, modules, caches), some 100,000 objects.
"""

from __future__ import annotations

import gc

#: allocations, less deallocations, between runs over the youngest objects (CPython's default: 700).
#: Requests in flight hold some thousands at c50; the rare cycle (a connection torn down mid-answer)
#: waits a little longer to be freed.
YOUNG_THRESHOLD = 50_000


def settle_heap() -> None:
    """Once the server has started: what exists now (modules, the schema, settings, pools) is kept apart
    from the collector's runs for good, and the youngest objects are looked over less often."""
    gc.collect()
    gc.freeze()
    _, middle, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, oldest)
