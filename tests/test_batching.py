"""One query's events cost one cache read, whatever their sources: counted in MongoDB commands."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from typing import Any

import aiohttp
from pymongo import monitoring

from gateway.ids import encode_global_id
from gateway.model import Source
from gateway.settings import ResponseCacheSettings, Settings
from tests.conftest import CommandCounter, Sim
from tests.test_read_path import reset_counts, seed

VENDOR_SETTINGS = ("loop", "streamloop", "livepush")
FOUR = """query($ids: [ID!]!) { nodes(ids: $ids) { id ... on LiveEvent { title status } } }"""


async def test_four_sources_in_one_query_cost_one_read_and_one_write(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    ids = await seed(sim, 3)
    await reset_counts(sim)
    vendors = settings_for()
    fresh = {name: getattr(vendors, name).model_copy(update={"fresh_for": 3600}) for name in VENDOR_SETTINGS}
    global_ids = [encode_global_id(source, ids[source][0]) for source in Source]
    database = f"test_batching_{uuid.uuid4().hex[:8]}"
    listener = CommandCounter(database, "events")
    # A listener registered globally reaches the clients made afterwards, the gateway's among them.
    monitoring.register(listener)
    async with make_gateway(mongodb_database=database, read_memo_ttl=0.0, **fresh) as gw:
        listener.commands.clear()  # the indexes made at start
        cold = await gw.query(FOUR, {"ids": global_ids})
        assert [node["id"] for node in cold["data"]["nodes"]] == global_ids
        await gw.services.store.events.settled()  # the write-back does not hold the answer up
        # One cache read for all four; one read of what they were (for the change feed) and one bulk
        # write for what the vendors answered.
        assert listener.commands == {"find": 2, "update": 1}
        assert await sim.vendor_requests() == 4
        listener.commands.clear()
        warm = await gw.query(FOUR, {"ids": global_ids})
        assert warm["data"] == cold["data"]
        assert listener.commands == {"find": 1}
        assert await sim.vendor_requests() == 4


async def test_reads_are_remembered_for_a_moment_and_forgotten_on_a_write(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    ids = await seed(sim, 3)
    vendors = settings_for()
    fresh = {name: getattr(vendors, name).model_copy(update={"fresh_for": 3600}) for name in VENDOR_SETTINGS}
    one = encode_global_id(Source.STREAMLOOP_STREAM, ids[Source.STREAMLOOP_STREAM][0])
    page = "{ liveEvents(first: 5) { totalCount edges { node { id title } } } }"
    database = f"test_memo_{uuid.uuid4().hex[:8]}"
    listener = CommandCounter(database, "events")
    monitoring.register(listener)
    # The hub reads the change feed only at start here, so that nothing but this test forgets the memo.
    async with make_gateway(mongodb_database=database, read_memo_ttl=60.0, changes_poll_interval=600, **fresh) as gw:
        first = await gw.query(page)  # lists every vendor into the index, then reads a page into the memo
        await gw.query(FOUR, {"ids": [one]})  # from the index, into the memo
        listener.commands.clear()
        # Within the memo's time, the same reads ask MongoDB nothing.
        assert await gw.query(FOUR, {"ids": [one]}) == await gw.query(FOUR, {"ids": [one]})
        assert await gw.query(page) == first
        assert listener.commands == {}
        # A write through this replica forgets them: the next reads go to MongoDB again.
        refreshed = await gw.query("mutation($id: ID!) { refreshLiveEvent(id: $id) { event { id } } }", {"id": one})
        assert refreshed["data"]["refreshLiveEvent"]["event"]["id"] == one
        listener.commands.clear()
        await gw.query(FOUR, {"ids": [one]})
        await gw.query(page)
        assert listener.commands["find"] == 2


def test_a_read_across_a_write_is_not_remembered() -> None:
    from gateway.store.memo import ReadMemo

    now = [0.0]
    memo = ReadMemo(ttl=1.0, clock=lambda: now[0])
    generation = memo.generation
    memo.invalidate()  # a write lands while the read is out
    memo.put("k", "old", generation)
    assert memo.get("k") is None
    memo.put("k", "new", memo.generation)
    assert memo.get("k") == "new"
    now[0] = 1.0
    assert memo.get("k") is None  # past its time
    assert ReadMemo(ttl=0).enabled is False


async def test_a_change_another_replica_publishes_makes_the_memo_forget(
    sim: Sim, make_gateway: Callable[..., Any]
) -> None:
    ids = await seed(sim, 2)
    page = "{ liveEvents(first: 5) { edges { node { id } } } }"
    database = f"test_memo_feed_{uuid.uuid4().hex[:8]}"
    listener = CommandCounter(database, "events")
    monitoring.register(listener)
    async with make_gateway(mongodb_database=database, read_memo_ttl=60.0, changes_poll_interval=0.05) as gw:
        await gw.query(page)
        await gw.query(page)
        listener.commands.clear()
        await gw.query(page)
        assert listener.commands == {}
        # What another replica's write leaves in the change feed that every replica follows.
        key = (Source.STREAMLOOP_STREAM, ids[Source.STREAMLOOP_STREAM][0])
        stored = (await gw.services.store.events.get_keys([key]))[key]
        await gw.services.store.changes.publish([(stored.event, 2)])
        listener.commands.clear()
        async with asyncio.timeout(5):
            while listener.commands.get("find", 0) == 0:
                await asyncio.sleep(0.05)
                await gw.query(page)


async def test_with_nothing_fresh_enough_the_vendor_is_asked_at_once_and_a_failure_still_serves_the_cache(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    ids = await seed(sim, 2)
    always = settings_for().streamloop.model_copy(update={"fresh_for": 0, "retries": 0})
    one = encode_global_id(Source.STREAMLOOP_STREAM, ids[Source.STREAMLOOP_STREAM][0])
    query = "query($id: ID!) { liveEvent(id: $id) { id title freshness { servedFrom stale } } }"
    async with make_gateway(streamloop=always) as gw:
        await reset_counts(sim)
        first = (await gw.query(query, {"id": one}))["data"]["liveEvent"]
        second = (await gw.query(query, {"id": one}))["data"]["liveEvent"]
        assert first["freshness"] == second["freshness"] == {"servedFrom": "VENDOR", "stale": False}
        assert await sim.vendor_requests("streamloop") == 2
        await sim.control("POST", "faults", {"streamloop": {"error_burst": 5, "error_status": 503}})
        body = await gw.query(query, {"id": one})
        # The cache was read while the vendor was asked: its copy answers, marked stale, with no error.
        assert "errors" not in body
        assert body["data"]["liveEvent"]["title"] == first["title"]
        assert body["data"]["liveEvent"]["freshness"] == {"servedFrom": "CACHE", "stale": True}


async def test_the_write_backs_of_concurrent_answers_land_in_one_bulk_write(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    ids = await seed(sim, 3)
    vendors = settings_for()
    # Not shared in flight (neither the reads nor the queries), so that each of the concurrent answers is a
    # write-back of its own.
    unshared = {"fresh_for": 0, "deduplicate_reads": False}
    cold = {name: getattr(vendors, name).model_copy(update=unshared) for name in VENDOR_SETTINGS}
    global_ids = [encode_global_id(source, ids[source][0]) for source in Source]
    database = f"test_write_back_{uuid.uuid4().hex[:8]}"
    listener = CommandCounter(database, "events")
    monitoring.register(listener)
    # Write-backs wait a minute here, unless something needs them sooner.
    apart = ResponseCacheSettings(share_in_flight=False)
    async with make_gateway(
        mongodb_database=database, read_memo_ttl=0.0, write_behind_delay=60.0, response_cache=apart, **cold
    ) as gw:
        await reset_counts(sim)
        listener.commands.clear()
        answers = await asyncio.gather(*(gw.query(FOUR, {"ids": global_ids}) for _ in range(5)))
        assert all(answer == answers[0] and "errors" not in answer for answer in answers)
        assert "update" not in listener.commands
        reads = listener.commands["find"]
        # The next read asks the vendors again (nothing is fresh enough) and finds its cached copies
        # in the write-backs, not in MongoDB.
        again = await gw.query(FOUR, {"ids": global_ids})
        assert again == answers[0]
        assert listener.commands["find"] == reads
        assert await sim.vendor_requests() == 6 * 4
        await gw.services.store.events.settled()
        # One read of what the events were, for the change feed, and one bulk write: for six answers.
        assert listener.commands["update"] == 1
        assert listener.commands["find"] == reads + 1


async def test_a_write_back_over_what_this_replica_wrote_last_swaps_without_reading_it_first(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    ids = await seed(sim, 3)
    vendors = settings_for()
    cold = {name: getattr(vendors, name).model_copy(update={"fresh_for": 0}) for name in VENDOR_SETTINGS}
    global_ids = [encode_global_id(source, ids[source][0]) for source in Source]
    database = f"test_known_{uuid.uuid4().hex[:8]}"
    listener = CommandCounter(database, "events")
    monitoring.register(listener)
    async with make_gateway(mongodb_database=database, read_memo_ttl=60.0, **cold) as gw:
        listener.commands.clear()
        first = await gw.query(FOUR, {"ids": global_ids})
        await gw.services.store.events.settled()
        # The cache read (three of the answers leave values of `extra` unknown), the read of what the events
        # were (for the swap and the change feed), one bulk write.
        assert listener.commands == {"find": 2, "update": 1}
        listener.commands.clear()
        again = await gw.query(FOUR, {"ids": global_ids})
        await gw.services.store.events.settled()
        assert again == first
        # This replica swapped them last: what they hold is known, and the write-back swaps over that,
        # without reading them again.
        assert listener.commands == {"update": 1}
        assert await sim.vendor_requests() >= 8

        # Another writer moves one on meanwhile: the swap over the remembered revision is beaten, and that
        # event is read and swapped again; what the other writer stored is not lost under an older answer.
        key = (Source.STREAMLOOP_STREAM, ids[Source.STREAMLOOP_STREAM][0])
        collection = gw.services.store.events._events
        await collection.update_one({"_id": f"{key[0].value}:{key[1]}"}, {"$inc": {"rev": 1}})
        before = await collection.find_one({"_id": f"{key[0].value}:{key[1]}"}, {"rev": True})
        assert before is not None
        listener.commands.clear()
        assert await gw.query(FOUR, {"ids": global_ids}) == first
        await gw.services.store.events.settled()
        # a bulk write; then a read of the beaten one and its swap again
        assert listener.commands == {"find": 1, "update": 2}
        after = await collection.find_one({"_id": f"{key[0].value}:{key[1]}"}, {"rev": True})
        assert after is not None and after["rev"] == before["rev"] + 1
        # Swapped again, each is known again.
        listener.commands.clear()
        assert await gw.query(FOUR, {"ids": global_ids}) == first
        await gw.services.store.events.settled()
        assert listener.commands == {"update": 1}


class _FindsOfEvents(monitoring.CommandListener):
    def __init__(self, database: str, seen: list[str]) -> None:
        self.database = database
        self.seen = seen

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        command = event.command_name
        if event.database_name == self.database and command == "find" and event.command.get(command) == "events":
            self.seen.append("cache read")

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_with_nothing_fresh_enough_the_cache_is_read_behind_the_vendor_calls_only_for_what_is_not_known(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    ids = await seed(sim, 2)
    vendors = settings_for()
    # No budget of Streamloop's quota, whose count is kept in MongoDB and taken before its call is sent.
    unbounded = {"fresh_for": 0, "budget": None, "retries": 0}
    cold = {name: getattr(vendors, name).model_copy(update=unbounded) for name in VENDOR_SETTINGS}
    database = f"test_order_{uuid.uuid4().hex[:8]}"
    seen: list[str] = []
    monitoring.register(_FindsOfEvents(database, seen))
    one = encode_global_id(Source.STREAMLOOP_STREAM, ids[Source.STREAMLOOP_STREAM][0])
    pushed = [encode_global_id(Source.LIVEPUSH_STREAM, native_id) for native_id in ids[Source.LIVEPUSH_STREAM]]
    detail = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on LivepushStream { id chatId embedId } } }"
    memory = {"read_memo_ttl": 60.0, "changes_poll_interval": 0.05}
    async with make_gateway(mongodb_database=database, **memory, **cold) as gw:
        events = gw.services.store.events

        async def sent(*_: Any) -> None:
            seen.append("vendor call")

        # Told when a vendor request's head is on the wire, as the OpenTelemetry instrumentation is.
        traced = aiohttp.TraceConfig()
        traced.on_request_headers_sent.append(sent)
        traced.freeze()
        # One session serves every vendor.
        gw.services.clients[Source.STREAMLOOP_STREAM.vendor].session._trace_configs.append(traced)

        # Another stream first, for a connection to Streamloop kept alive.
        other = encode_global_id(Source.STREAMLOOP_STREAM, ids[Source.STREAMLOOP_STREAM][1])
        assert "errors" not in await gw.query(FOUR, {"ids": [other]})
        seen.clear()
        # An event never read here: its cached copy is read beside the vendor call, sent once the call has
        # left (it is needed only once the vendor answers).
        assert "errors" not in await gw.query(FOUR, {"ids": [one]})
        assert seen == ["vendor call", "cache read"]
        await events.settled()
        # Stored by this process since: nothing is read.
        seen.clear()
        assert "errors" not in await gw.query(FOUR, {"ids": [one]})
        assert seen == ["vendor call"]

        # Each Livepush stream read alone, from its own endpoint, which gives its chat and embed ids.
        alone = [(await gw.query(detail, {"ids": [stream]}))["data"]["nodes"][0] for stream in pushed]
        assert all(stream["chatId"] and stream["embedId"] for stream in alone)
        await events.settled()

        # Read together, the streams come from Livepush's list, which leaves their chat and embed ids out:
        # this replica stored them last, so it knows them.
        seen.clear()
        assert (await gw.query(detail, {"ids": pushed}))["data"]["nodes"] == alone
        assert seen == ["vendor call"]
        await events.settled()

        # Another replica changes one: its cached copy is read again, beside the list.
        stored = (await events.get_keys([(Source.LIVEPUSH_STREAM, ids[Source.LIVEPUSH_STREAM][0])])).values()
        await gw.services.store.changes.publish([(next(iter(stored)).event, 99)])
        for _ in range(250):  # the hub reads the feed every 0.05 s
            if events.stored_extra(Source.LIVEPUSH_STREAM, ids[Source.LIVEPUSH_STREAM][0]) is None:
                break
            await asyncio.sleep(0.02)
        else:
            raise AssertionError("the change was not heard from the feed")
        seen.clear()
        assert (await gw.query(detail, {"ids": pushed}))["data"]["nodes"] == alone
        assert seen == ["vendor call", "cache read"]
        await events.settled()

        # The vendor fails, for an event whose stored values are known: its cached copy is read once it has
        # failed, and served.
        await sim.control("POST", "faults", {"streamloop": {"error_burst": 1, "error_status": 503}})
        seen.clear()
        failed = await gw.query("query($id: ID!) { liveEvent(id: $id) { id freshness { stale } } }", {"id": one})
        assert failed["data"]["liveEvent"] == {"id": one, "freshness": {"stale": True}}
        assert seen == ["vendor call", "cache read"]


async def test_concurrent_reads_by_id_cost_one_find(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    ids = await seed(sim, 3)
    database = f"test_reads_{uuid.uuid4().hex[:8]}"
    listener = CommandCounter(database, "events")
    monitoring.register(listener)
    keys = [(source, native_id) for source in Source for native_id in ids[source]]
    async with make_gateway(mongodb_database=database, read_memo_ttl=0.0) as gw:
        events = gw.services.store.events
        await gw.query(FOUR, {"ids": [encode_global_id(source, native_id) for source, native_id in keys]})
        await events.settled()
        listener.commands.clear()
        # Twelve callers at once, one event each and one that is not stored: one `$in` find for them all.
        missing = (Source.LOOP_CALL, "c_not_there")
        found = await asyncio.gather(*(events.get_keys([key]) for key in [*keys, missing]))
        assert listener.commands == {"find": 1}
        assert [list(answer) for answer in found] == [*([key] for key in keys), []]
        assert all(answer[key].event.native_id == key[1] for answer, key in zip(found, keys, strict=False))
        # One after the other, each is its own.
        listener.commands.clear()
        for key in keys[:3]:
            assert list(await events.get_keys([key])) == [key]
        assert listener.commands == {"find": 3}
