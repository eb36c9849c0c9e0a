"""Conformance of the events index's reads: keyset paging (an `$or` of the position, beside the filter),
counts, the dashboard's `$group`s and counts over date windows, the title regex, `$in` and `$nin`, among
neighbours built to catch a wrong match: several sources, starts within one second, the same title."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.model import Event, Recording, Source, Status
from gateway.store.conformance.registry import Check, check, expect
from gateway.store.events import FAR_FUTURE, EventFilter, EventStore, event_id
from gateway.store.mongo import Database

#: a few milliseconds into a second, so that neighbours a few hundred milliseconds apart share it
T0 = datetime(2026, 3, 1, 12, 0, 0, 3000, tzinfo=UTC)
_STATUSES = [Status.SCHEDULED, Status.LIVE, Status.ENDED, Status.CANCELLED, Status.STARTING]


def _neighbours() -> list[Event]:
    """Events of three sources, starting 250 ms apart (four to a second), some with no start, most with
    one title; every third live, some ended with a recording."""
    events = []
    sources = [Source.LIVEPUSH_STREAM, Source.STREAMLOOP_STREAM, Source.LOOP_SESSION]
    for n in range(18):
        status = _STATUSES[n % len(_STATUSES)]
        start = None if n % 7 == 6 else T0 + timedelta(milliseconds=250 * n)
        ended = status is Status.ENDED
        events.append(
            Event(
                source=sources[n % 3],
                native_id=f"e{n:02d}",
                status=status,
                vendor_status=status.value.lower(),
                is_live=status is Status.LIVE,
                title="Same title" if n % 4 else "Other title",
                scheduled_start=start,
                ended_at=T0 + timedelta(milliseconds=300 * n) if ended else None,
                recordings=[Recording(url=f"https://r/{n}")] if ended and n % 2 else [],
                raw={"id": f"e{n:02d}"},
            )
        )
    return events


def _order(event: Event) -> tuple[datetime, str]:
    start = FAR_FUTURE if event.scheduled_start is None else event.scheduled_start.replace(microsecond=0)
    return start, event_id(event.source, event.native_id)


_FILTERS = {
    "none": EventFilter(),
    "one source": EventFilter(sources=[Source.LIVEPUSH_STREAM]),
    "statuses": EventFilter(statuses=[Status.SCHEDULED, Status.LIVE]),
    "live": EventFilter(is_live=True),
    "title": EventFilter(title_contains="SAME"),
    "window within seconds": EventFilter(
        scheduled_from=T0 + timedelta(milliseconds=500), scheduled_to=T0 + timedelta(milliseconds=2250)
    ),
    "source and window": EventFilter(
        sources=[Source.STREAMLOOP_STREAM, Source.LOOP_SESSION], scheduled_from=T0 + timedelta(milliseconds=750)
    ),
}


async def _stored(db: Database) -> tuple[EventStore, list[Event]]:
    events = EventStore(db)
    neighbours = _neighbours()
    await events.put_many(neighbours, T0)
    return events, neighbours


@check("events.page", "find({$and: [filter, {$or: [{sort_start: {$gt}}, {sort_start, sort_id: {$gt}}]}]}).sort.limit")
async def page(db: Database) -> None:
    events, neighbours = await _stored(db)
    for name, filter in _FILTERS.items():
        expected = [_order(e)[1] for e in sorted((e for e in neighbours if filter.matches(e)), key=_order)]
        for size in (1, 2, 5):
            forward: list[str] = []
            cursor: str | None = None
            for _ in range(len(neighbours) + 1):
                got = await events.page(filter, first=size, after=cursor)
                forward += [event_id(p.event.source, p.event.native_id) for p in got.events]
                if not got.has_next:
                    break
                cursor = got.end_cursor
            expect(forward == expected, f"paging {name!r} {size} at a time listed {forward}, not {expected}")
            backward: list[str] = []
            cursor = None
            for _ in range(len(neighbours) + 1):
                got = await events.page(filter, last=size, before=cursor)
                backward = [event_id(p.event.source, p.event.native_id) for p in got.events] + backward
                if not got.has_previous:
                    break
                cursor = got.start_cursor
            expect(backward == expected, f"paging {name!r} back {size} at a time listed {backward}")


@check("events.count", "count_documents(filter): $in, booleans, regex, integer windows, $and")
async def count(db: Database) -> None:
    events, neighbours = await _stored(db)
    for name, filter in _FILTERS.items():
        expected = sum(filter.matches(e) for e in neighbours)
        counted = await events.count(filter)
        expect(counted == expected, f"count of {name!r} is {counted}, not {expected}")


@check("events.stats", "aggregate([$match, $group by field]); count_documents with date windows within a second")
async def stats(db: Database) -> None:
    events, neighbours = await _stored(db)
    now = T0 + timedelta(seconds=3, milliseconds=1)
    starting_within, ended_within = 1.0, 2.5
    for name, filter in _FILTERS.items():
        chosen = [e for e in neighbours if filter.matches(e)]
        got = await events.stats(filter, now=now, starting_within=starting_within, ended_within=ended_within)
        by_status: dict[Status, int] = {}
        by_source: dict[Source, int] = {}
        for e in chosen:
            by_status[e.status] = by_status.get(e.status, 0) + 1
            by_source[e.source] = by_source.get(e.source, 0) + 1
        starting = sum(
            e.scheduled_start is not None and now <= e.scheduled_start < now + timedelta(seconds=starting_within)
            for e in chosen
        )
        recent = [
            e for e in chosen if e.ended_at is not None and now - timedelta(seconds=ended_within) <= e.ended_at <= now
        ]
        expected = (
            len(chosen),
            by_status,
            by_source,
            sum(e.is_live for e in chosen),
            starting,
            sum(bool(e.recordings) for e in recent),
            sum(not e.recordings for e in recent),
        )
        told = (
            got.total,
            got.by_status,
            got.by_source,
            got.live_now,
            got.starting,
            got.ended_with_recording,
            got.ended_without_recording,
        )
        expect(told == expected, f"stats of {name!r}: {told}, not {expected}")


@check("events.get_keys", "find({_id: {$in: [...]}}) across sources, ids alike but for their source")
async def get_keys(db: Database) -> None:
    events, neighbours = await _stored(db)
    wanted = [(e.source, e.native_id) for e in neighbours[:4]]
    alike = [(Source.LOOP_CALL, e.native_id) for e in neighbours[:4]]
    found = await events.get_keys([*wanted, *alike])
    expect(sorted(found) == sorted(wanted), f"get_keys found {sorted(found)}")
    expect(all(found[key].event.native_id == key[1] for key in wanted), "get_keys paired an id with another event")


@check("events.unfinished_ids", "find({$and: [{source}, {status: {$nin: [...]}}]}, {native_id})")
async def unfinished_ids(db: Database) -> None:
    events, neighbours = await _stored(db)
    finished = {Status.ENDED, Status.FAILED, Status.CANCELLED}
    for source in (Source.LIVEPUSH_STREAM, Source.LOOP_SESSION):
        expected = sorted(e.native_id for e in neighbours if e.source is source and e.status not in finished)
        got = sorted(await events.unfinished_ids(source))
        expect(got == expected, f"unfinished {source.value}: {got}, not {expected}")


CHECKS: tuple[Check, ...] = (page, count, stats, get_keys, unfinished_ids)
