"""The response cache: a query's answer kept in this replica and given again without executing anything.

An answer is kept only when it can be given again unchanged for a while: a query (never a mutation) whose
root fields all read events or the index (`node`, `nodes`, `liveEvent`, `liveEvents`, `liveEventStats`),
that ended without errors and read nothing stale. It is known by its document, variables, operation
name and the caller's role (none of those fields answers differently for two callers of one role).

An entry lives no longer than the least freshness window of what it read: an event read by id until its
cached copy stops being fresh (`fetched_at + FRESH_FOR`); a listing or counts until the source's listing
is due to be read again (`listed_at + INDEX_REFRESH_INTERVAL`); counts over time windows
(`liveEventStats`) at most `RESPONSE_CACHE__WINDOWED_TTL`, since their windows move with the clock. And it
is dropped as soon as the change feed (written by every replica) tells of a change to an event it holds
or to a source whose listing it read. An answer given again says what executing the query would say within
that window: `freshness.ageSeconds` grows by the time since the answer was made, and an event that came
from its vendor then comes from the cache now (`servedFrom: CACHE`).

Identical requests share an execution in flight: a request that arrives while an identical one executes
waits for that execution's answer (`coalesce_wait` at most) instead of executing again, whether or not the
answer can be kept afterwards. That is the promise the vendors' in-flight reads already make (an answer
from a read in flight when the request came), so a herd on one event is one execution, even when
nothing may be kept (`FRESH_FOR=0`). Only answers without errors that read no stale copy are shared (either may
be the executing caller's own); a waiter of another answer, or of one that was not made (the execution
failed, the cache was emptied meanwhile), executes its own.

An entry is kept as the response body it is sent as, with the places of its `ageSeconds` values noted:
giving it again writes the ages anew into the bytes, and decodes and encodes nothing.
"""

from __future__ import annotations

import asyncio
import hashlib
import secrets
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from graphql import (
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    OperationDefinitionNode,
    OperationType,
    SelectionSetNode,
    parse,
)

from gateway.model import Event, Source
from gateway.settings import ResponseCacheSettings

#: root fields whose answers depend only on events and the index (and the role, for permission)
CACHEABLE_ROOT_FIELDS = frozenset({"node", "nodes", "liveEvent", "liveEvents", "liveEventStats", "__typename"})
AGE_FIELD = "ageSeconds"
SERVED_FROM_FIELD = "servedFrom"

#: (document hash, variables as JSON, operation name, role)
CacheKey = tuple[str, bytes, str | None, str | None]
EventKey = tuple[Source, str]


@dataclass(frozen=True, slots=True)
class Shape:
    """What the cache needs to know of a document's operation: whether it may be kept, and the response
    keys under which freshness is said."""

    cacheable: bool
    age_keys: frozenset[str] = frozenset()
    served_keys: frozenset[str] = frozenset()


@lru_cache(maxsize=1024)
def document_shape(text: str, operation_name: str | None) -> Shape:
    if "@defer" in text or "@stream" in text:
        return Shape(False)
    try:
        document = parse(text)
    except GraphQLError:
        return Shape(False)
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [o for o in operations if o.name is not None and o.name.value == operation_name]
    if len(operations) != 1 or operations[0].operation is not OperationType.QUERY:
        return Shape(False)
    operation = operations[0]
    for selection in operation.selection_set.selections:
        if not isinstance(selection, FieldNode) or selection.name.value not in CACHEABLE_ROOT_FIELDS:
            return Shape(False)
    keys: dict[str, set[str]] = {}
    _collect_keys(operation.selection_set, fragments, keys, set())
    age_keys = {key for key, names in keys.items() if AGE_FIELD in names}
    served_keys = {key for key, names in keys.items() if SERVED_FROM_FIELD in names}
    # A response key that is a freshness field somewhere and another field elsewhere could not be told apart.
    if any(len(keys[key]) > 1 for key in age_keys | served_keys):
        return Shape(False)
    return Shape(True, frozenset(age_keys), frozenset(served_keys))


def _collect_keys(
    selection_set: SelectionSetNode,
    fragments: dict[str, FragmentDefinitionNode],
    keys: dict[str, set[str]],
    seen_fragments: set[str],
) -> None:
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            key = selection.alias.value if selection.alias else selection.name.value
            keys.setdefault(key, set()).add(selection.name.value)
            if selection.selection_set is not None:
                _collect_keys(selection.selection_set, fragments, keys, seen_fragments)
        elif isinstance(selection, InlineFragmentNode):
            _collect_keys(selection.selection_set, fragments, keys, seen_fragments)
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            if name not in seen_fragments and name in fragments:
                seen_fragments.add(name)
                _collect_keys(fragments[name].selection_set, fragments, keys, seen_fragments)


@dataclass(slots=True)
class Reads:
    """What one request read, and until when all of it stays fresh (a wall-clock timestamp)."""

    events: set[EventKey] = field(default_factory=set)
    #: sources whose listing (the index) was read
    listings: set[Source] = field(default_factory=set)
    fresh_until: float = float("inf")
    #: something was read that must not be given again (a stale copy, an unknown freshness)
    uncacheable: bool = False

    def event(self, key: EventKey, fresh_until: datetime | float, *, stale: bool = False) -> None:
        self.events.add(key)
        self.until(fresh_until)
        if stale:
            self.uncacheable = True

    def listing(self, sources: set[Source], fresh_until: datetime | float | None) -> None:
        self.listings |= sources
        if fresh_until is None:
            self.uncacheable = True
        else:
            self.until(fresh_until)

    def until(self, moment: datetime | float) -> None:
        timestamp = moment.timestamp() if isinstance(moment, datetime) else moment
        self.fresh_until = min(self.fresh_until, timestamp)


#: stands for an `ageSeconds` value while an answer is encoded; random, so that no vendor's text can be it
_AGE_MARK = f"\x00age-{secrets.token_hex(8)}\x00"
_ENCODED_AGE_MARK = orjson.dumps(_AGE_MARK)
_CACHE = "CACHE"


@dataclass(frozen=True, slots=True)
class Template:
    """A response body in pieces, with an `ageSeconds` value due between each two: `parts[0] age[0] parts[1]
    ... parts[n]`. `servedFrom` in it already says CACHE, as it does whenever the body is given again."""

    parts: tuple[bytes, ...]
    ages: tuple[float, ...]

    @classmethod
    def of(cls, data: dict[str, Any], shape: Shape) -> Template | None:
        """The body `{"data": data}` as given again; None when it cannot be told apart (never in practice)."""
        ages: list[float] = []
        marked = _marked(data, shape, ages) if shape.age_keys or shape.served_keys else data
        body = orjson.dumps({"data": marked})
        parts = tuple(body.split(_ENCODED_AGE_MARK))
        if len(parts) != len(ages) + 1:
            return None
        return cls(parts, tuple(ages))

    @property
    def size(self) -> int:
        return sum(len(part) for part in self.parts) + 24 * len(self.ages)

    def body(self, elapsed: float) -> bytes:
        """The body `elapsed` seconds after the answer was made."""
        if not self.ages:
            return self.parts[0]
        pieces = [self.parts[0]]
        for age, part in zip(self.ages, self.parts[1:], strict=True):
            # In microseconds, as executing gives it (the time between two datetimes).
            pieces.append(orjson.dumps(round(age + elapsed, 6)))
            pieces.append(part)
        return b"".join(pieces)


def _marked(value: Any, shape: Shape, ages: list[float]) -> Any:
    """A copy of `value` with each age replaced by the mark (its value noted in `ages`, in the order orjson
    writes them) and each event read from its vendor said to come from the cache."""
    if isinstance(value, dict):
        copy: dict[str, Any] = {}
        for key, item in value.items():
            if key in shape.age_keys and isinstance(item, int | float) and not isinstance(item, bool):
                ages.append(float(item))
                copy[key] = _AGE_MARK
            elif key in shape.served_keys and item == "VENDOR":
                copy[key] = _CACHE
            elif isinstance(item, dict | list):
                copy[key] = _marked(item, shape, ages)
            else:
                copy[key] = item
        return copy
    if isinstance(value, list):
        return [_marked(item, shape, ages) if isinstance(item, dict | list) else item for item in value]
    return value


@dataclass(slots=True)
class Entry:
    template: Template
    made_at: float
    expires_at: float
    events: frozenset[EventKey]
    listings: frozenset[Source]

    @property
    def size(self) -> int:
        return self.template.size + 64 * (len(self.events) + 1)


@dataclass(frozen=True, slots=True)
class Hit:
    #: the response body, as executing now would answer
    body: bytes
    #: seconds the answer stays good
    max_age: float


@dataclass(frozen=True, slots=True)
class Shared:
    """The answer of an execution in flight, for the identical requests that waited for it."""

    #: the response body, as the executing request sends it
    body: bytes
    #: seconds the response cache keeps it; None when it is not kept
    max_age: float | None


@dataclass(slots=True)
class InFlight:
    """An execution in flight and the identical requests waiting for its answer, each on a future of its
    own (a waiter that is cancelled cancels only its own)."""

    #: when it began, in the event loop's time
    began: float
    waiters: list[asyncio.Future[Shared | None]] = field(default_factory=list)
    #: when it stops holding its waiters (`coalesce_wait` after it began)
    timer: asyncio.TimerHandle | None = None

    def release(self, shared: Shared | None) -> None:
        if self.timer is not None:
            self.timer.cancel()
        waiters, self.waiters = self.waiters, []
        for waiter in waiters:
            if not waiter.done():
                waiter.set_result(shared)


class ResponseCache:
    """This replica's answers, bounded by `max_bytes`, least recently used dropped first."""

    def __init__(self, settings: ResponseCacheSettings) -> None:
        self.settings = settings
        self._entries: OrderedDict[CacheKey, Entry] = OrderedDict()
        self._by_event: dict[EventKey, set[CacheKey]] = {}
        self._by_listing: dict[Source, set[CacheKey]] = {}
        self.bytes = 0
        #: invalidations so far, and the recent ones, so that an answer made across one is not kept
        self.generation = 0
        self._recent: deque[tuple[int, Source, str]] = deque(maxlen=4096)
        #: the generation of the last `clear`: an answer begun before it is not kept
        self._cleared = 0
        self.hits = 0
        self.misses = 0
        #: the executions in flight, each awaited by the identical requests that came meanwhile
        self._in_flight: dict[CacheKey, InFlight] = {}

    def __len__(self) -> int:
        return len(self._entries)

    @staticmethod
    def key(
        text: str, variables: dict[str, Any] | None, operation_name: str | None, role: str | None
    ) -> CacheKey | None:
        """The request's key, or None when its variables cannot be written as JSON (nested deeper than
        orjson goes): such a request is neither looked up nor kept, and execution says what is wrong."""
        digest = hashlib.blake2b(text.encode(), digest_size=16).hexdigest()
        try:
            encoded = orjson.dumps(variables or {}, option=orjson.OPT_SORT_KEYS)
        except orjson.JSONEncodeError:
            return None
        return (digest, encoded, operation_name, role)

    def get(self, key: CacheKey) -> Hit | None:
        entry = self._entries.get(key)
        now = time.time()
        if entry is None or entry.expires_at <= now:
            if entry is not None:
                self._drop(key)
            self.misses += 1
            return None
        self._entries.move_to_end(key)
        self.hits += 1
        return Hit(entry.template.body(now - entry.made_at), entry.expires_at - now)

    def put(
        self, key: CacheKey, data: dict[str, Any], reads: Reads, shape: Shape, made_at: float, generation: int
    ) -> float | None:
        """Keep `data` made at `made_at` from `reads`; the seconds it stays good, or None when it is not kept."""
        if not self.settings.enabled or not shape.cacheable or reads.uncacheable:
            return None
        expires_at = min(reads.fresh_until, made_at + self.settings.max_ttl)
        if expires_at <= time.time() or self._changed_since(generation, reads):
            return None
        template = Template.of(data, shape)
        if template is None:
            return None
        entry = Entry(template, made_at, expires_at, frozenset(reads.events), frozenset(reads.listings))
        if entry.size > self.settings.max_bytes:
            return None
        if key in self._entries:
            self._drop(key)
        self._entries[key] = entry
        self.bytes += entry.size
        for event in entry.events:
            self._by_event.setdefault(event, set()).add(key)
        for source in entry.listings:
            self._by_listing.setdefault(source, set()).add(key)
        while self.bytes > self.settings.max_bytes:
            self._drop(next(iter(self._entries)))
        return expires_at - time.time()

    def _changed_since(self, generation: int, reads: Reads) -> bool:
        if generation == self.generation:
            return False
        if generation < self._cleared:
            return True
        if self.generation - generation > len(self._recent):
            return True  # too many to look through: assume the worst
        return any(
            seen > generation and ((source, native_id) in reads.events or source in reads.listings)
            for seen, source, native_id in self._recent
        )

    def invalidate(self, source: Source, native_id: str) -> int:
        """Drop the entries holding the event or having read its source's listing; how many."""
        self.generation += 1
        self._recent.append((self.generation, source, native_id))
        doomed = self._by_event.get((source, native_id), set()) | self._by_listing.get(source, set())
        for key in list(doomed):
            self._drop(key)
        return len(doomed)

    def clear(self) -> None:
        """Drop every entry, and keep or share none of the answers being made now: what they were made under
        (the schema and its limits) no longer holds."""
        self.generation += 1
        self._cleared = self.generation
        for key in list(self._entries):
            self._drop(key)
        flights = list(self._in_flight.values())
        self._in_flight.clear()
        for flight in flights:
            flight.release(None)

    async def share(self, key: CacheKey) -> Shared | None:
        """The answer of the identical execution in flight, once it is made; None when none is in flight or
        its answer is not shared (the caller then executes its own). A waiter that is cancelled (its client
        went away) leaves the execution to the others."""
        flight = self._in_flight.get(key)
        if flight is None:
            return None
        loop = asyncio.get_running_loop()
        if flight.timer is None:  # set by the first waiter: an execution no one joins needs none
            flight.timer = loop.call_at(flight.began + self.settings.coalesce_wait, self._release, key, flight, None)
        waiter: asyncio.Future[Shared | None] = loop.create_future()
        flight.waiters.append(waiter)
        return await waiter

    def begin(self, key: CacheKey) -> InFlight | None:
        """Notes an execution of `key` in flight, whose answer `end` gives to the identical requests that
        come meanwhile; None when one is in flight already. Past `coalesce_wait` it holds no one: its waiters
        execute their own, and the requests that come later do not wait for it."""
        if key in self._in_flight:
            return None
        flight = self._in_flight[key] = InFlight(asyncio.get_running_loop().time())
        return flight

    def end(self, key: CacheKey, flight: InFlight, shared: Shared | None) -> None:
        """The execution `begin` noted is over: its waiters get `shared` (None: they execute their own)."""
        self._release(key, flight, shared)

    def _release(self, key: CacheKey, flight: InFlight, shared: Shared | None) -> None:
        if self._in_flight.get(key) is flight:
            del self._in_flight[key]
        flight.release(shared)

    def forget_event(self, event: Event) -> None:
        self.invalidate(event.source, event.native_id)

    def _drop(self, key: CacheKey) -> None:
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        self.bytes -= entry.size
        for event in entry.events:
            keys = self._by_event.get(event)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_event[event]
        for source in entry.listings:
            keys = self._by_listing.get(source)
            if keys is not None:
                keys.discard(key)
                if not keys:
                    del self._by_listing[source]
