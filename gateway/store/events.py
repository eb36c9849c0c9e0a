"""The events index: one document per vendor event, the cache of what the vendor last said and the
collection `liveEvents` pages over.

Document shape (collection `events`):
- `_id`: `"<SOURCE>:<native_id>"`;
- every `Event.to_doc()` field at the top level;
- `raw`: the vendor's own object; `fetched_us`: when the vendor was asked, in integer microseconds since
  the epoch, the order of answers; `fetched_at`: when the vendor was asked for what the document says (to
  the millisecond, as BSON keeps dates): an answer that says the same again moves only `fetched_us`;
- `rev`: the document's revision, 1 on insert and one more on every write: each write is a
  compare-and-swap on it;
- `sort_start`: `scheduled_start` to the whole second, or `FAR_FUTURE` when there is none;
- `sort_id`: a copy of `_id`, the tie-breaker of the paging order;
- `start_us`: `scheduled_start` in integer microseconds since the epoch (null without one), for the
  window filters;
- `title_lc`: the case-folded title, for the title filter;
- `has_recording`: whether the event has a recording, for the dashboard counts.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import orjson
from aiodataloader import DataLoader
from pymongo import ASCENDING, DESCENDING, UpdateOne
from pymongo.errors import BulkWriteError

from gateway.model import Event, Source, Status
from gateway.store.changes import WATCHED, ChangeFeed, watched_state
from gateway.store.cursors import KeysetPosition
from gateway.store.health import StoreHealth
from gateway.store.memo import ReadMemo
from gateway.store.mongo import (
    FORCE_DOCUMENT_REWRITE,
    Collection,
    Database,
    Document,
    as_read_back,
    ensure_index,
    utc_collection,
)

#: `sort_start` of an event without a scheduled start. A real date rather than null, so that such events
#: sort last and a keyset comparison never meets null: null sorts before every date, and `$gt`/`$lt`
#: against a date never match it, so paging across it would need a special case in every query.
FAR_FUTURE = datetime(9999, 12, 31, tzinfo=UTC)

# nx-27017's `find` compares dates to the second (its counts compare them exactly), so the paging key
# holds whole seconds, where both comparisons are exact; events starting within one second are ordered
# by `_id`.
#
# The paging order is `(sort_start, _id)`, but its indexes end with `sort_id`, a copy of `_id`: nx-27017
# fails every write to a collection that has an index whose keys include `_id`.
_ORDER_FIELDS = ("sort_start", "sort_id")
_INDEXES: list[tuple[list[tuple[str, int]], dict[str, Any]]] = [
    ([("source", ASCENDING), ("native_id", ASCENDING)], {"unique": True}),
    ([("sort_start", ASCENDING), ("sort_id", ASCENDING)], {}),
    ([("source", ASCENDING), ("sort_start", ASCENDING), ("sort_id", ASCENDING)], {}),
    ([("status", ASCENDING), ("sort_start", ASCENDING), ("sort_id", ASCENDING)], {}),
]
# What a reader never needs back: the vendor object can be large, the rest is derived.
_DUPLICATE_KEY = 11000
#: what a write reads first: the revision to swap, the order of the stored answer, what subscribers watch,
#: and `extra`, whose known values the swap sets over the stored ones
_GUARD_PROJECTION = dict.fromkeys(("rev", "fetched_us", "fetched_at", "digest", "extra", *WATCHED), True)
#: beside a state this process stored itself: the digest of the vendor's object stored (None: none, or unknown)
_RAW_DIGEST = "raw_digest"
#: beside a state this process stored itself: when its swap landed, or a read last found it (`time.monotonic()`)
_CONFIRMED_AT = "confirmed_at"
#: rounds of read-and-swap a write makes while other writers keep landing first (each round one of them
#: lands, so this is only reached under a storm of writes to one event; the newest keeps winning anyway)
_MAX_SWAPS = 8
#: events whose stored state (`_GUARD_PROJECTION`) this process keeps from its own last swap of them
_KNOWN_STATES = 10_000
_READ_PROJECTION = {"raw": False, "title_lc": False, "sort_id": False, "has_recording": False, "start_us": False}

# Escaped one by one rather than with `re.escape`, whose escapes of other characters (a space, say)
# are Python's dialect; a backslash before these means the character itself in PCRE and in Python.
_REGEX_METACHARACTERS = frozenset("\\^$.|?*+()[]{}")


def event_id(source: Source, native_id: str) -> str:
    return f"{source.value}:{native_id}"


def _fold_title(text: str) -> str:
    return text.casefold()


def _escape_regex(text: str) -> str:
    return "".join("\\" + char if char in _REGEX_METACHARACTERS else char for char in text)


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICROSECOND = timedelta(microseconds=1)


def micros(at: datetime) -> int:
    """`at` in integer microseconds since the epoch: answers are ordered by this, exactly, on every server
    (nx-27017 compares dates to the second)."""
    return (_as_utc(at) - _EPOCH) // _MICROSECOND


def _from_micros(value: int) -> datetime:
    return _EPOCH + timedelta(microseconds=value)


def sort_start_of(event: Event) -> datetime:
    """The event's place in the paging order, with its `_id`."""
    if event.scheduled_start is None:
        return FAR_FUTURE
    return _as_utc(event.scheduled_start).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class CachedEvent:
    """An event as the store last saw it; whether that is fresh enough is the caller's call."""

    event: Event
    fetched_at: datetime

    def age(self, now: datetime) -> float:
        """Seconds since the vendor said it."""
        return (now - self.fetched_at).total_seconds()


class PagedEvent(NamedTuple):
    event: Event
    cursor: str
    fetched_at: datetime


@dataclass(frozen=True, slots=True)
class EventStats:
    total: int
    by_status: dict[Status, int]
    by_source: dict[Source, int]
    live_now: int
    starting: int
    ended_with_recording: int
    ended_without_recording: int


@dataclass(frozen=True, slots=True)
class EventPage:
    events: list[PagedEvent]
    has_next: bool
    has_previous: bool
    start_cursor: str | None
    end_cursor: str | None


@dataclass(slots=True)
class EventFilter:
    """Which events to list. `None` means "any"; an empty list matches nothing."""

    sources: list[Source] | None = None
    statuses: list[Status] | None = None
    is_live: bool | None = None
    scheduled_from: datetime | None = None  # inclusive, on scheduled_start
    scheduled_to: datetime | None = None  # exclusive
    title_contains: str | None = None  # case-insensitive substring; empty means no filter

    def matches(self, event: Event) -> bool:
        """Whether `event` is one `to_query()` selects, for events that are not read from the store."""
        start = event.scheduled_start
        return (
            (self.sources is None or event.source in self.sources)
            and (self.statuses is None or event.status in self.statuses)
            and (self.is_live is None or event.is_live == self.is_live)
            and (self.scheduled_from is None or (start is not None and start >= self.scheduled_from))
            and (self.scheduled_to is None or (start is not None and start < self.scheduled_to))
            and (not self.title_contains or _fold_title(self.title_contains) in _fold_title(event.title or ""))
        )

    def to_query(self) -> Document:
        # Conditions joined with an explicit `$and`: each is its own document, so one can never
        # overwrite another's key, and the paging condition joins the same way.
        clauses: list[Document] = []
        if self.sources is not None:
            clauses.append({"source": {"$in": [source.value for source in self.sources]}})
        if self.statuses is not None:
            clauses.append({"status": {"$in": [status.value for status in self.statuses]}})
        if self.is_live is not None:
            clauses.append({"is_live": self.is_live})
        # On the exact start, in integer microseconds: nx-27017 compares dates in a `find` to the second
        # (and exactly in a count), so a date bound inside a second would list what it does not count.
        # Each bound its own clause: nx-27017's aggregation ignores the second operator of a range held in
        # one document, and on MongoDB the two forms mean the same.
        if self.scheduled_from is not None:
            clauses.append({"start_us": {"$gte": micros(self.scheduled_from)}})
        if self.scheduled_to is not None:
            clauses.append({"start_us": {"$lt": micros(self.scheduled_to)}})
        if self.title_contains:
            clauses.append({"title_lc": {"$regex": _escape_regex(_fold_title(self.title_contains))}})
        return _all_of(clauses)


def _all_of(clauses: list[Document]) -> Document:
    clauses = [clause for clause in clauses if clause]
    if not clauses:
        return {}
    if len(clauses) == 1:
        return clauses[0]
    return {"$and": clauses}


def _beyond(position: KeysetPosition, *, forward: bool, inclusive: bool = False) -> Document:
    """The events strictly after (or before) `position` in paging order, or also at it."""
    compare = "$gt" if forward else "$lt"
    tie_compare = compare + ("e" if inclusive else "")
    return {
        "$or": [
            {"sort_start": {compare: position.sort_start}},
            {"sort_start": position.sort_start, "sort_id": {tie_compare: position.event_id}},
        ]
    }


def _event_document(event: Event, fetched_at: datetime) -> Document:
    """The `$set` of one event: every field, but only the known values of `extra`, and the vendor's
    object only when the event carries one (an event read back from the store does not)."""
    fields = event.to_doc()
    extra: dict[str, Any] = fields.pop("extra")
    raw = fields.pop("raw")
    _id = event_id(event.source, event.native_id)
    # What the event says, in one value: a write that changes it is told in the change feed.
    said = orjson.dumps([fields, extra], option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    fields.update(
        digest=hashlib.blake2b(said, digest_size=12).hexdigest(),
        source=event.source.value,
        status=event.status.value,
        fetched_at=fetched_at,
        fetched_us=micros(fetched_at),
        sort_start=sort_start_of(event),
        start_us=None if event.scheduled_start is None else micros(event.scheduled_start),
        sort_id=_id,
        # Stored, not derived in queries: an array's emptiness is not queried the same way everywhere.
        has_recording=bool(event.recordings),
        title_lc=None if event.title is None else _fold_title(event.title),
    )
    if raw is not None:
        fields["raw"] = raw
    for key, value in extra.items():
        # A listing may omit what the detail endpoint said (Livepush's chat_id and embed_id): an
        # unknown value keeps the known one.
        if value is not None:
            fields[f"extra.{key}"] = value
    return fields


def _sets_extra(event: Event) -> bool:
    """Whether the event's `$set` sets keys of `extra` (`_event_document` writes its known values)."""
    return any(value is not None for value in event.extra.values())


def _check_extra_names(event: Event) -> None:
    for key in event.extra:
        if "." in key or key.startswith("$"):
            _id = event_id(event.source, event.native_id)
            raise ValueError(f"extra field name {key!r} of {_id} cannot be a document path")


def _compare_and_swap(_id: str, fields: Document, before: Document | None, *, sets_extra: bool) -> UpdateOne:
    """The write of `fields` over the stored document as `before` showed it (None: there was none);
    `sets_extra`: whether `fields` set keys of `extra` (an event with a known value there).

    It lands only while the document is still at the revision `before` had: the filter is `_id` and that
    revision, by equality (`rev: null` matches a document not stored yet, and one stored before documents
    had revisions). Where another writer got there first, the filter matches nothing and the upsert's
    insert fails on `_id` (a duplicate key error for this write alone); the caller reads again and decides.
    """
    revision = None if before is None else before.get("rev")
    update: Document = {"$set": {**fields, "rev": _revision_after(before)}, **FORCE_DOCUMENT_REWRITE}
    if not sets_extra:
        # `extra` exists from the first write, so later per-key writes never create it; with a key set
        # this would conflict with it, and the key's path creates `extra` anyway.
        update["$setOnInsert"] = {"extra": {}}
    # source and native_id in the filter: a sharded cluster (shard key {source, native_id}) routes an
    # upsert only with the whole shard key in its filter.
    query = {"_id": _id, "source": fields["source"], "native_id": fields["native_id"], "rev": revision}
    return UpdateOne(query, update, upsert=True)


def _revision_after(before: Document | None) -> int:
    """The revision a swap over `before` (None: no document yet) moves the document to."""
    return int((before or {}).get("rev") or 0) + 1


def _touch(_id: str, fields: Document, before: Document) -> UpdateOne:
    """The swap of a write that says what `before`, the stored document, says: only the answer's time and
    the revision move, as integers, which nx-27017 sets in place (a date would be stored as text, see
    `FORCE_DOCUMENT_REWRITE`) instead of rewriting the whole document. `fetched_at` keeps the time of
    the answer that last changed the document. Not an upsert: with the document gone, it lands nowhere
    (and is then read again and written whole)."""
    query = {"_id": _id, "source": fields["source"], "native_id": fields["native_id"], "rev": before.get("rev")}
    return UpdateOne(query, {"$set": {"fetched_us": fields["fetched_us"], "rev": _revision_after(before)}})


def _raw_digest(raw: Any) -> str | None:
    """A digest of the vendor's object (None: the write carries none, and leaves the stored one)."""
    if raw is None:
        return None
    said = orjson.dumps(raw, option=orjson.OPT_SORT_KEYS | orjson.OPT_NON_STR_KEYS)
    return hashlib.blake2b(said, digest_size=12).hexdigest()


def _says_the_same(before: Document | None, fields: Document, raw_digest: str | None) -> bool:
    """Whether a write of `fields` (and a vendor's object of `raw_digest`) over `before`, the state this
    process stored itself, would change nothing but the answer's time."""
    if before is None or _RAW_DIGEST not in before or before.get("digest") != fields["digest"]:
        return False
    return raw_digest is None or raw_digest == before[_RAW_DIGEST]


@dataclass(frozen=True, slots=True)
class _Attempt:
    """One write's swap in a round: the `$set` it makes, and the stored state it swaps over."""

    write: _Write
    fields: Document
    raw_digest: str | None
    before: Document | None
    #: only the answer's time moves (`_touch`)
    touch: bool

    @property
    def revision(self) -> int:
        return _revision_after(self.before)

    @property
    def stored_extra(self) -> dict[str, Any] | None:
        """The `extra` the document holds once this lands (None: not known): a swap sets the event's known
        values over the stored ones, a touch leaves them."""
        if self.before is None:
            return self.write.event.extra_over({})
        earlier = self.before.get("extra")
        if earlier is None:
            return None
        return dict(earlier) if self.touch else self.write.event.extra_over(earlier)

    @property
    def stored_raw_digest(self) -> str | None:
        """The digest of the vendor's object the document holds once this lands: a write without one
        leaves the stored one."""
        if self.raw_digest is not None or self.before is None:
            return self.raw_digest
        return self.before.get(_RAW_DIGEST)

    def update(self) -> UpdateOne:
        if self.touch:
            assert self.before is not None
            return _touch(self.write.id, self.fields, self.before)
        return _compare_and_swap(self.write.id, self.fields, self.before, sets_extra=_sets_extra(self.write.event))


def _missed_touches(attempts: list[_Attempt], beaten: set[int], outcome: Mapping[str, Any]) -> set[int]:
    """The touches of one bulk write, should any of them have matched no document.

    A touch is no upsert, so one beaten by another writer fails no write: it only matches nothing, and
    the bulk write's result counts matches, not which. The swaps that matched are those neither beaten
    nor inserted; the rest of the count is touches. Short of all of them, every touch is read again and
    lands in a later round (one that did land is then found at its own answer's time, and swapped again).
    """
    touches = {index for index, attempt in enumerate(attempts) if attempt.touch}
    if not touches:
        return set()
    inserted = len(outcome.get("upserted") or ())
    swaps_matched = len(attempts) - len(touches) - len(beaten) - inserted
    if int(outcome.get("nMatched", 0)) - swaps_matched == len(touches):
        return set()
    return touches


def _fetched_us(doc: Document) -> int:
    """When the vendor was asked for the stored copy, in microseconds (from `fetched_at` for a document
    stored before `fetched_us` was)."""
    if doc.get("fetched_us") is not None:
        return int(doc["fetched_us"])
    return micros(doc["fetched_at"]) if doc.get("fetched_at") is not None else -1


def _read_event(doc: Document) -> tuple[Event, datetime]:
    fetched_at = _from_micros(doc["fetched_us"]) if doc.get("fetched_us") is not None else _as_utc(doc["fetched_at"])
    return Event.from_doc(doc), fetched_at


log = logging.getLogger(__name__)

#: remembered for an id the store does not have
_ABSENT = object()


def _query_key(query: Document) -> bytes:
    return orjson.dumps(query, option=orjson.OPT_SORT_KEYS, default=str)


@dataclass(frozen=True, slots=True)
class _Write:
    """One event's upsert: the event and when its vendor was asked."""

    id: str
    event: Event
    fetched_at: datetime

    @classmethod
    def of(cls, event: Event, fetched_at: datetime) -> _Write:
        _check_extra_names(event)
        return cls(event_id(event.source, event.native_id), event, fetched_at)

    def then(self, later: _Write) -> _Write:
        """This write and then `later` as one: what the store holds once both have landed."""
        if later.fetched_at < self.fetched_at:
            return self  # the store keeps the newer copy
        raw = later.event.raw if later.event.raw is not None else self.event.raw
        event = dataclasses.replace(later.event, extra=later.event.extra_over(self.event.extra), raw=raw)
        return _Write(later.id, event, later.fetched_at)


class EventStore:
    """The events collection.

    Writes the caller need not wait for (`put_many_later`) are gathered for `write_delay` seconds and
    land together, one bulk write at a time: under load a write-back serves many answers, and a burst of
    reads of one event writes it once. Until they land, reads by id are answered from them, and listings
    and counts wait for them, so this process never reads around its own writes.
    """

    def __init__(
        self,
        db: Database,
        feed: ChangeFeed | None = None,
        memo_ttl: float = 0.0,
        write_delay: float = 0.0,
        health: StoreHealth | None = None,
    ) -> None:
        self._events: Collection = utc_collection(db, "events")
        #: listings and counts are refused at once while MongoDB is known not to answer
        self._health = health
        #: where writes tell which events changed status, schedule or recordings (None: nobody listens)
        self._feed = feed
        #: recent reads, answered again from memory for `memo_ttl` seconds (0: never)
        self.memo = ReadMemo(memo_ttl)
        self._write_delay = write_delay
        #: writes not begun yet, and the ones being written, by `_id`
        self._queued: dict[str, _Write] = {}
        self._writing: dict[str, _Write] = {}
        self._flush_timer: asyncio.TimerHandle | None = None
        self._flushes: set[asyncio.Task[None]] = set()
        #: write-backs queued so far, and how many of the first of them have landed (or failed): each
        #: batch takes every write-back queued before it, and batches land one at a time, in order
        self._queued_count = 0
        self._landed_count = 0
        #: callers of `settled()`, each with the count it waits for
        self._settling: list[tuple[int, asyncio.Future[None]]] = []
        #: told of each event this process is about to write, as the write is queued or begun (what this
        #: replica keeps made from the event is not to be given again)
        self.on_write: Callable[[Event], None] | None = None
        #: reads by id of concurrent callers: the ids asked for in one turn of the event loop are read in one
        #: `$in` find, so that concurrent requests' cache reads cost MongoDB one command rather than one each
        self._reads: DataLoader | None = None
        #: what each event this process swapped last was left as (revision, answer time, digest, watched
        #: fields), by `_id`: the next write of it swaps over that without reading it first. Should another
        #: writer have moved it on meanwhile, the swap's revision no longer matches, and it is read again.
        self._known: OrderedDict[str, Document] = OrderedDict()
        #: changes heard of (`heard_of`): a swap or read begun before one may have crossed it, and does not
        #: make what it found known
        self._heard = 0

    def put_many_later(self, events: Sequence[Event], fetched_at: datetime) -> None:
        """`put_many`, without making the caller wait: the answer that read these events from the vendor
        need not wait for the cache to take them."""
        fetched_at = _as_utc(fetched_at)
        for event in events:
            if self.on_write is not None:
                self.on_write(event)
            try:
                write = _Write.of(event, fetched_at)
            except ValueError:
                log.exception("event %s:%s cannot be stored", event.source.value, event.native_id)
                continue
            earlier = self._queued.get(write.id)
            self._queued[write.id] = write if earlier is None else earlier.then(write)
            self._queued_count += 1
        if self._queued and self._flush_timer is None and not self._writing:
            self._flush_timer = asyncio.get_running_loop().call_later(self._write_delay, self._flush)

    def _flush(self) -> None:
        """Begins writing what is queued, unless a write is under way (whose end begins the next)."""
        if self._flush_timer is not None:
            self._flush_timer.cancel()
            self._flush_timer = None
        if self._writing:
            return
        if not self._queued:
            # What was queued has landed, or was superseded by a write that has.
            self._landed(self._queued_count)
            return
        self._writing, self._queued = self._queued, {}
        task = asyncio.create_task(self._write_queued(self._writing, self._queued_count), name="events-write-behind")
        self._flushes.add(task)
        task.add_done_callback(self._flushes.discard)

    async def _write_queued(self, batch: dict[str, _Write], through: int) -> None:
        """Write `batch`, which holds every write-back up to the `through`-th not written before."""
        try:
            await self._write(list(batch.values()))
        except Exception:
            # The answers were served; the next reads ask the vendors again.
            log.exception("writing %d events to the index failed", len(batch))
        finally:
            if self._writing is batch:
                self._writing = {}
            self._landed(through)
            if self._queued:
                self._flush()

    def _landed(self, through: int) -> None:
        self._landed_count = max(self._landed_count, through)
        waiting = []
        for count, waiter in self._settling:
            if count <= self._landed_count:
                if not waiter.done():
                    waiter.set_result(None)
            else:
                waiting.append((count, waiter))
        self._settling = waiting

    async def settled(self) -> None:
        """Returns when every write-back queued before this call has landed (or failed).

        Not when none is left: under steady load write-backs keep coming, and a listing waiting for a
        quiet moment would wait as long as the load lasts. It waits for the write under way, if any, and
        the one that takes what is queued now, which begins at once.
        """
        wanted = self._queued_count
        if self._landed_count >= wanted:
            return
        waiter = asyncio.get_running_loop().create_future()
        self._settling.append((wanted, waiter))
        self._flush()
        await waiter

    async def ensure_indexes(self) -> None:
        for keys, options in _INDEXES:
            await ensure_index(self._events, keys, **options)

    async def get_many(self, source: Source, native_ids: Iterable[str]) -> dict[str, CachedEvent]:
        """The stored events among `native_ids`, by native id, in one query."""
        found = await self.get_keys((source, native_id) for native_id in native_ids)
        return {native_id: cached for (_, native_id), cached in found.items()}

    async def get_keys(self, keys: Iterable[tuple[Source, str]]) -> dict[tuple[Source, str], CachedEvent]:
        """The stored events among `keys` (source and native id), whatever their sources, in one query."""
        wanted = {event_id(source, native_id): (source, native_id) for source, native_id in keys}
        if not wanted:
            return {}
        found: dict[tuple[Source, str], CachedEvent] = {}
        unknown = []
        for _id, key in wanted.items():
            unwritten = self._unwritten(_id)
            if unwritten is not None:
                # As it will be read back: the vendor's object is not.
                found[key] = CachedEvent(dataclasses.replace(unwritten.event, raw=None), unwritten.fetched_at)
                continue
            remembered = self.memo.get(("event", _id))
            if remembered is None:
                unknown.append(_id)
            elif remembered is not _ABSENT:
                found[key] = remembered
        if not unknown:
            return found
        generation, heard = self.memo.generation, self._heard
        for doc in await self._reader().load_many(unknown):
            if doc is None:
                continue
            if heard == self._heard:  # a read that crossed a change heard of confirms nothing
                self._confirm_known(doc)
            event, fetched_at = _read_event(doc)
            found[(event.source, event.native_id)] = CachedEvent(event=event, fetched_at=fetched_at)
        for _id in unknown:
            self.memo.put(("event", _id), found.get(wanted[_id], _ABSENT), generation)
        return found

    def _unwritten(self, _id: str) -> _Write | None:
        """The write-back of `_id` queued or under way, if any: until it lands, reads by id answer from it."""
        return self._queued.get(_id) or self._writing.get(_id)

    def _reader(self) -> DataLoader:
        """The loader of stored events by `_id`, for the running event loop (a DataLoader is bound to one)."""
        loop = asyncio.get_running_loop()
        if self._reads is None or self._reads.loop is not loop:
            self._reads = DataLoader(self._find_by_ids, cache=False, loop=loop)
        return self._reads

    async def _find_by_ids(self, ids: Sequence[str]) -> list[Document | None]:
        by_id = {
            doc["_id"]: doc async for doc in self._events.find({"_id": {"$in": sorted(set(ids))}}, _READ_PROJECTION)
        }
        return [by_id.get(_id) for _id in ids]

    async def put_many(self, events: Sequence[Event], fetched_at: datetime) -> None:
        """Insert or update each event, with the vendor object it came from (`Event.raw`), in one bulk
        write. `fetched_at` is when the vendor was asked; a stored copy asked for later is kept."""
        if not events:
            return
        fetched_at = _as_utc(fetched_at)
        writes = [_Write.of(event, fetched_at) for event in events]
        await self._write(writes)
        # A write-back still to land that this one supersedes is not served by id any longer (and one
        # not begun is not needed: it would not change the stored copy).
        for write in writes:
            for unwritten in (self._queued, self._writing):
                older = unwritten.get(write.id)
                if older is not None and older.fetched_at <= write.fetched_at:
                    del unwritten[write.id]

    async def _write(self, writes: list[_Write]) -> int:
        """Land each write unless the store holds an answer asked for later; the number that landed.

        Each round reads the stored revisions and answer times (one `find`), then swaps every write
        whose answer is not older than the stored one (one bulk write of compare-and-swaps; a write that says
        what this process stored last moves only the answer's time, see `_touch`). A swap that another
        writer beat is read again in the next round, and lands or is found older. Subscribers
        hear of each swap that changed what they watch, from the state it replaced: never a move back.
        """
        if self.on_write is not None:
            for write in writes:
                self.on_write(write.event)
        landed = 0
        pending = writes
        for round in range(_MAX_SWAPS):
            # The first round swaps over what this process left each event as, where it knows; a swap that
            # was beaten is read again.
            heard = self._heard
            stored = {write.id: known for write in pending if round == 0 and (known := self._known.get(write.id))}
            ids = sorted({write.id for write in pending} - stored.keys())
            if ids:
                async for doc in self._events.find({"_id": {"$in": ids}}, _GUARD_PROJECTION):
                    stored[doc["_id"]] = doc
            attempts: list[_Attempt] = []
            for write in pending:
                before = stored.get(write.id)
                if before is not None and _fetched_us(before) > micros(write.fetched_at):
                    continue  # old news: the vendor was asked for the stored copy later
                # Made here rather than as each write is queued: a burst of write-backs of one event makes one.
                fields = _event_document(write.event, write.fetched_at)
                raw_digest = _raw_digest(fields.get("raw"))
                # Over what this process stored itself, saying the same: only the answer's time moves.
                touch = round == 0 and _says_the_same(before, fields, raw_digest)
                attempts.append(_Attempt(write, fields, raw_digest, before, touch))
            if not attempts:
                break
            beaten: set[int] = set()
            try:
                result = await self._events.bulk_write([attempt.update() for attempt in attempts], ordered=False)
                outcome: Mapping[str, Any] = result.bulk_api_result
            except BulkWriteError as exc:
                errors = exc.details.get("writeErrors", [])
                if any(error.get("code") != _DUPLICATE_KEY for error in errors):
                    self._forget_known(attempts)
                    raise
                beaten = {int(error["index"]) for error in errors}
                outcome = exc.details
            except BaseException:
                # Whether they landed is unknown (a lost reply): read them before swapping again.
                self._forget_known(attempts)
                raise
            finally:
                self.memo.invalidate()
            beaten |= _missed_touches(attempts, beaten, outcome)
            swapped = [attempt for index, attempt in enumerate(attempts) if index not in beaten]
            self._forget_known(attempts[index] for index in beaten)
            for attempt in swapped:
                self._remember_known(attempt, crossed_a_change=heard != self._heard)
            landed += len(swapped)
            if self._feed is not None:
                changed, quiet = [], []
                for attempt in swapped:
                    before, fields = attempt.before, attempt.fields
                    if before is not None and before.get("digest") == fields["digest"]:
                        continue  # it says what it said: the watched fields are among what the digest covers
                    if before is None or watched_state(before) != watched_state(fields):
                        changed.append((attempt.write.event, attempt.revision))
                    else:
                        quiet.append((attempt.write.event, attempt.revision))
                await self._feed.publish(changed, quiet=quiet)
            pending = [attempts[index].write for index in sorted(beaten)]
            if not pending:
                break
        else:
            log.warning("%d event writes kept losing to other writers and were dropped", len(pending))
        return landed

    def _remember_known(self, attempt: _Attempt, *, crossed_a_change: bool) -> None:
        """The stored state of an event once `attempt` swapped it: its fields at the attempt's revision,
        the digest of the vendor's object and the `extra` stored with them (not known if the swap crossed a
        change heard of: another writer may have moved it on since), and when."""
        _id = attempt.write.id
        extra = None if crossed_a_change else attempt.stored_extra
        self._known.pop(_id, None)
        if len(self._known) >= _KNOWN_STATES:
            self._known.popitem(last=False)
        state = {name: attempt.fields.get(name) for name in _GUARD_PROJECTION}
        self._known[_id] = state | {
            "_id": _id,
            "rev": attempt.revision,
            "extra": None if extra is None else as_read_back(extra),
            _RAW_DIGEST: attempt.stored_raw_digest,
            _CONFIRMED_AT: time.monotonic(),
        }

    def _confirm_known(self, doc: Document) -> None:
        """A read found `doc`: at the revision this process swapped last, its `extra` is what is stored."""
        known = self._known.get(doc["_id"])
        if known is not None and known["rev"] == doc.get("rev") and isinstance(doc.get("extra"), dict):
            known["extra"] = dict(doc["extra"])
            known[_CONFIRMED_AT] = time.monotonic()

    def stored_extra(self, source: Source, native_id: str) -> dict[str, Any] | None:
        """The `extra` of the stored event, as this process swapped it last; None when that is not known.

        Not known: never swapped here, or neither swapped nor found by a read within the memo's `ttl` (a
        write of another replica that the change feed does not carry shows within it, as in the memo),
        another writer heard of since (see `heard_of`; a read that finds the revision swapped here makes it
        known again), or a write of it queued or under way (a read by id answers from that write).
        """
        _id = event_id(source, native_id)
        if self._unwritten(_id) is not None:
            return None
        known = self._known.get(_id)
        if known is None or known["extra"] is None or time.monotonic() - known[_CONFIRMED_AT] >= self.memo.ttl:
            return None
        return dict(known["extra"])

    def heard_of(self, source: Source, native_id: str) -> None:
        """A writer (maybe another replica) changed the event: what it stored in `extra` is not known here,
        nor made known by a swap or read under way."""
        self._heard += 1
        known = self._known.get(event_id(source, native_id))
        if known is not None:
            known["extra"] = None

    def _forget_known(self, attempts: Iterable[_Attempt]) -> None:
        for attempt in attempts:
            self._known.pop(attempt.write.id, None)

    async def mark_missing(self, source: Source, seen_ids: Iterable[str], listed_at: datetime) -> int:
        """Cancel the events of `source` that a complete vendor listing, begun at `listed_at`, left out.

        An event whose vendor was asked after the listing began may have been created meanwhile, so it
        stays. The others are read, then each written back as deleted with the listing's time, through
        the same compare-and-swap as every write: one written meanwhile with a later answer stays as it
        is. Returns how many events were marked.
        """
        query = _all_of(
            [
                {"source": source.value},
                {"native_id": {"$nin": sorted(set(seen_ids))}},
                {"fetched_us": {"$lt": micros(listed_at)}},
                {"vendor_status": {"$ne": "deleted"}},
            ]
        )
        gone = [_read_event(doc)[0].deleted() async for doc in self._events.find(query, _READ_PROJECTION)]
        if not gone:
            return 0
        return await self._write([_Write.of(event, _as_utc(listed_at)) for event in gone])

    async def stats(
        self, filter: EventFilter, *, now: datetime, starting_within: float, ended_within: float
    ) -> EventStats:
        """Dashboard counts over the events `filter` selects, computed by the server.

        Two `$group`s give the breakdowns and four counts the rest, all at once. (A `$facet`, or a
        `$group` on a compound key, would do it in one round trip on MongoDB; nx-27017 runs a `$facet`
        after a `$match` batch by batch without merging, and does not evaluate compound group keys.)
        """
        self._check_available()
        # As listings do: counts that left out this replica's write-backs on their way would disagree with
        # the page a caller just read.
        if self._queued or self._writing:
            await self.settled()
        query = filter.to_query()
        starting_until = now + timedelta(seconds=starting_within)
        ended = [{"ended_at": {"$gte": now - timedelta(seconds=ended_within)}}, {"ended_at": {"$lte": now}}]

        async def grouped(field: str) -> dict[str, int]:
            pipeline = [{"$match": query}, {"$group": {"_id": f"${field}", "n": {"$sum": 1}}}]
            return {row["_id"]: int(row["n"]) async for row in await self._events.aggregate(pipeline)}

        def count_of(*clauses: Document) -> Awaitable[int]:
            return self._events.count_documents(_all_of([query, *clauses]))

        by_status, by_source, live_now, starting, with_recording, without_recording = await asyncio.gather(
            grouped("status"),
            grouped("source"),
            count_of({"is_live": True}),
            count_of({"scheduled_start": {"$gte": now}}, {"scheduled_start": {"$lt": starting_until}}),
            count_of(*ended, {"has_recording": True}),
            count_of(*ended, {"has_recording": False}),
        )
        return EventStats(
            total=sum(by_status.values()),
            by_status={Status(status): n for status, n in by_status.items()},
            by_source={Source(source): n for source, n in by_source.items()},
            live_now=live_now,
            starting=starting,
            ended_with_recording=with_recording,
            ended_without_recording=without_recording,
        )

    async def unfinished_ids(self, source: Source, limit: int = 1000) -> list[str]:
        """Native ids of the source's events that may still change (not ended, failed or cancelled)."""
        finished = [Status.ENDED.value, Status.FAILED.value, Status.CANCELLED.value]
        cursor = self._events.find(
            {"$and": [{"source": source.value}, {"status": {"$nin": finished}}]}, {"native_id": True}
        ).limit(limit)
        return [doc["native_id"] async for doc in cursor]

    def _check_available(self) -> None:
        if self._health is not None:
            self._health.check()

    async def count(self, filter: EventFilter) -> int:
        self._check_available()
        if self._queued or self._writing:
            await self.settled()
        query = filter.to_query()
        key = ("count", _query_key(query))
        remembered = self.memo.get(key)
        if remembered is not None:
            return int(remembered)
        generation = self.memo.generation
        total = await self._events.count_documents(query)
        self.memo.put(key, total, generation)
        return total

    async def page(
        self,
        filter: EventFilter | None = None,
        *,
        first: int | None = None,
        after: str | None = None,
        last: int | None = None,
        before: str | None = None,
    ) -> EventPage:
        """A page of events in `(sort_start, _id)` order: `first` after a cursor, or `last` before one.

        One query of one row more than asked tells whether more follow in the paging direction. The other
        direction is exact too: with a cursor given, one `find_one` looks for any event at or beyond it
        the other way (an event there may have been deleted since); without one, there is none.
        """
        if first is not None and last is None and before is None:
            forward, size, cursor = True, first, after
        elif last is not None and first is None and after is None:
            forward, size, cursor = False, last, before
        else:
            raise ValueError("page with first (and after) or with last (and before)")
        if size < 0:
            raise ValueError(f"{'first' if forward else 'last'} must not be negative")
        position = KeysetPosition.decode(cursor) if cursor is not None else None

        self._check_available()
        if self._queued or self._writing:
            await self.settled()
        base = (filter or EventFilter()).to_query()
        key = ("page", _query_key(base), forward, size, cursor)
        remembered = self.memo.get(key)
        if remembered is not None:
            page: EventPage = remembered
            return page
        generation = self.memo.generation
        query = base if position is None else _all_of([base, _beyond(position, forward=forward)])
        direction = ASCENDING if forward else DESCENDING
        rows = [
            doc
            async for doc in self._events.find(query, _READ_PROJECTION)
            .sort([(field, direction) for field in _ORDER_FIELDS])
            .limit(size + 1)
        ]
        more_this_way = len(rows) > size
        rows = rows[:size]
        if not forward:
            rows.reverse()
        more_other_way = position is not None and await self._exists(
            _all_of([base, _beyond(position, forward=not forward, inclusive=True)])
        )

        events = []
        for doc in rows:
            event, fetched_at = _read_event(doc)
            position_of_row = KeysetPosition(sort_start=_as_utc(doc["sort_start"]), event_id=doc["_id"])
            events.append(PagedEvent(event=event, cursor=position_of_row.encode(), fetched_at=fetched_at))
        page = EventPage(
            events=events,
            has_next=more_this_way if forward else more_other_way,
            has_previous=more_other_way if forward else more_this_way,
            start_cursor=events[0].cursor if events else None,
            end_cursor=events[-1].cursor if events else None,
        )
        self.memo.put(key, page, generation)
        return page

    async def _exists(self, query: Document) -> bool:
        return await self._events.find_one(query, {"_id": True}) is not None
