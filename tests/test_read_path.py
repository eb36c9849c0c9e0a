"""The read path end to end: GraphQL over HTTP -> loaders -> MongoDB -> simulators, counted exactly."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from gateway.ids import encode_global_id
from gateway.model import Source
from tests.conftest import Sim
from tests.gateway_harness import Gateway

EVENT_FIELDS = """
  id source vendor nativeId title status vendorStatus isLive scheduledStart
  freshness { servedFrom stale ageSeconds fetchedAt }
"""

LIST_QUERY = f"""
query($first: Int, $after: String, $last: Int, $before: String, $filter: LiveEventFilter) {{
  liveEvents(first: $first, after: $after, last: $last, before: $before, filter: $filter) {{
    totalCount
    edges {{ cursor node {{ {EVENT_FIELDS} }} }}
    pageInfo {{ hasNextPage hasPreviousPage startCursor endCursor }}
  }}
}}"""

NODES_QUERY = f"query($ids: [ID!]!) {{ nodes(ids: $ids) {{ ... on LiveEvent {{ {EVENT_FIELDS} }} }} }}"

SOURCE_KEYS = {
    Source.LOOP_CALL: "loop_call",
    Source.LOOP_SESSION: "loop_session",
    Source.STREAMLOOP_STREAM: "streamloop_stream",
    Source.LIVEPUSH_STREAM: "livepush_stream",
}


async def seed(sim: Sim, count: int, seed_value: int = 3) -> dict[Source, list[str]]:
    ids = await sim.control("POST", "seed", {"seed": seed_value, "count": count})
    return {source: ids[key] for source, key in SOURCE_KEYS.items()}


async def reset_counts(sim: Sim) -> None:
    await sim.control("POST", "reset", {"stats_only": True})


async def requests_by_route(sim: Sim) -> dict[tuple[str, str, str], int]:
    stats = await sim.stats()
    out: dict[tuple[str, str, str], int] = {}
    for row in stats["requests"]:
        key = (row["vendor"], row["method"], row["route"])
        out[key] = out.get(key, 0) + row["count"]
    return out


def global_ids(ids: dict[Source, list[str]]) -> list[str]:
    return [encode_global_id(source, native) for source, natives in ids.items() for native in natives]


async def walk(gateway: Gateway, direction: str, size: int, **variables: Any) -> list[str]:
    """Every node id met walking the whole connection forward or backward."""
    seen: list[str] = []
    cursor = None
    while True:
        if direction == "forward":
            body = await gateway.query(LIST_QUERY, {"first": size, "after": cursor, **variables})
        else:
            body = await gateway.query(LIST_QUERY, {"last": size, "before": cursor, **variables})
        assert "errors" not in body, body
        conn = body["data"]["liveEvents"]
        ids = [edge["node"]["id"] for edge in conn["edges"]]
        seen.extend(ids if direction == "forward" else reversed(ids))
        info = conn["pageInfo"]
        if direction == "forward":
            if not info["hasNextPage"]:
                return seen
            cursor = info["endCursor"]
        else:
            if not info["hasPreviousPage"]:
                return seen
            cursor = info["startCursor"]


async def test_list_cold_then_warm_counts_vendor_requests(sim: Sim, gateway: Gateway) -> None:
    ids = await seed(sim, 10)
    # Loop calls have no list endpoint: they enter the index when first read.
    call_ids = [encode_global_id(Source.LOOP_CALL, i) for i in ids[Source.LOOP_CALL]]
    assert "errors" not in await gateway.query(NODES_QUERY, {"ids": call_ids})
    await reset_counts(sim)

    cold = await gateway.query(LIST_QUERY, {"first": 100})
    assert "errors" not in cold, cold
    assert cold["data"]["liveEvents"]["totalCount"] == 40
    assert len(cold["data"]["liveEvents"]["edges"]) == 40
    routes = await requests_by_route(sim)
    # One page per listable source (each holds 10 events), and nothing else.
    assert routes == {
        ("loop", "GET", "/v1/live/sessions"): 1,
        ("streamloop", "GET", "/streams"): 1,
        ("livepush", "GET", "/streams/mine"): 1,
    }

    await reset_counts(sim)
    warm = await gateway.query(LIST_QUERY, {"first": 100})
    assert await sim.vendor_requests() == 0
    assert {e["node"]["id"] for e in warm["data"]["liveEvents"]["edges"]} == set(global_ids(ids))
    assert all(e["node"]["freshness"]["servedFrom"] == "CACHE" for e in warm["data"]["liveEvents"]["edges"])


async def test_cold_list_walks_every_vendor_page(sim: Sim, gateway: Gateway) -> None:
    await seed(sim, 120)
    await reset_counts(sim)
    body = await gateway.query(LIST_QUERY, {"first": 100, "filter": {"vendors": ["STREAMLOOP"]}})
    assert body["data"]["liveEvents"]["totalCount"] == 120
    # Streamloop lists at most 100 a page: two pages, and no other vendor is asked.
    assert await requests_by_route(sim) == {("streamloop", "GET", "/streams"): 2}


async def test_fifty_ids_one_request_per_uncached_id_then_none(sim: Sim, gateway: Gateway) -> None:
    ids = await seed(sim, 13)
    wanted = {source: natives[:13] for source, natives in ids.items()}
    gids = global_ids(wanted)[:50]
    await reset_counts(sim)

    body = await gateway.query(NODES_QUERY, {"ids": [*gids, gids[0], gids[20]]})
    assert "errors" not in body, body
    nodes = body["data"]["nodes"]
    assert [n["id"] for n in nodes] == [*gids, gids[0], gids[20]]
    assert all(n["freshness"]["servedFrom"] == "VENDOR" for n in nodes)
    routes = await requests_by_route(sim)
    per_source = {
        Source.LOOP_CALL: routes.get(("loop", "GET", "/v1/live/calls/{id}"), 0),
        Source.LOOP_SESSION: routes.get(("loop", "GET", "/v1/sessions/{id}"), 0),
        Source.STREAMLOOP_STREAM: routes.get(("streamloop", "GET", "/streams/{id}"), 0),
    }
    asked = {s: sum(1 for g in gids if g in global_ids({s: wanted[s]})) for s in per_source}
    assert per_source == asked  # one request per distinct uncached id, duplicates fetched once
    # Livepush's list endpoint answers the whole batch in one call.
    assert routes.get(("livepush", "GET", "/streams/mine"), 0) == 1
    assert routes.get(("livepush", "GET", "/streams/{streamId}"), 0) == 0
    assert sum(routes.values()) == sum(asked.values()) + 1

    await reset_counts(sim)
    again = await gateway.query(NODES_QUERY, {"ids": gids})
    assert "errors" not in again
    assert await sim.vendor_requests() == 0
    assert all(n["freshness"]["servedFrom"] == "CACHE" for n in again["data"]["nodes"])


async def test_missing_event_is_null_without_error(sim: Sim, gateway: Gateway) -> None:
    missing = encode_global_id(Source.STREAMLOOP_STREAM, "stream_01JN0000000000000000000000")
    body = await gateway.query(f'{{ liveEvent(id: "{missing}") {{ id }} node(id: "{missing}") {{ id }} }}')
    assert body == {"data": {"liveEvent": None, "node": None}}


async def test_malformed_id_is_bad_user_input(gateway: Gateway) -> None:
    body = await gateway.query('{ liveEvent(id: "not-an-id") { id } }')
    assert body["data"] == {"liveEvent": None}
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert body["errors"][0]["extensions"]["field"] == "id"


async def test_failing_vendor_serves_stale_cache(sim: Sim, make_gateway: Callable[..., Any], settings_for: Any) -> None:
    ids = await seed(sim, 2)
    stream = encode_global_id(Source.STREAMLOOP_STREAM, ids[Source.STREAMLOOP_STREAM][0])
    session = encode_global_id(Source.LOOP_SESSION, ids[Source.LOOP_SESSION][0])
    base = settings_for()
    # Nothing is ever fresh, so each read asks the vendor; the cache is the fallback only.
    async with make_gateway(
        streamloop=base.streamloop.model_copy(update={"fresh_for": 0}),
        loop=base.loop.model_copy(update={"fresh_for": 0}),
    ) as gw:
        first = await gw.query(NODES_QUERY, {"ids": [stream, session]})
        assert [n["freshness"]["stale"] for n in first["data"]["nodes"]] == [False, False]
        await sim.control("POST", "faults", {"streamloop": {"error_rate": 1.0, "error_status": 500}})
        body = await gw.query(NODES_QUERY, {"ids": [stream, session]})
    assert "errors" not in body, body
    stale, fresh = body["data"]["nodes"]
    assert stale["id"] == stream and stale["freshness"] == {
        **stale["freshness"],
        "stale": True,
        "servedFrom": "CACHE",
    }
    assert fresh["id"] == session and fresh["freshness"]["stale"] is False
    assert fresh["freshness"]["servedFrom"] == "VENDOR"


async def test_failing_vendor_with_nothing_cached_is_null_plus_error(sim: Sim, gateway: Gateway) -> None:
    ids = await seed(sim, 1)
    stream = encode_global_id(Source.STREAMLOOP_STREAM, ids[Source.STREAMLOOP_STREAM][0])
    call = encode_global_id(Source.LOOP_CALL, ids[Source.LOOP_CALL][0])
    await sim.control("POST", "faults", {"streamloop": {"error_rate": 1.0, "error_status": 503}})
    body = await gateway.query(NODES_QUERY, {"ids": [call, stream]})
    assert body["data"]["nodes"][0]["id"] == call
    assert body["data"]["nodes"][1] is None
    [error] = body["errors"]
    assert error["path"] == ["nodes", 1]
    assert error["extensions"]["code"] == "VENDOR_UNAVAILABLE"
    assert error["extensions"]["vendor"] == "STREAMLOOP"
    assert error["extensions"]["retryable"] is True


async def test_failing_vendor_listing_keeps_other_vendors(sim: Sim, gateway: Gateway) -> None:
    await seed(sim, 3)
    await sim.control("POST", "faults", {"livepush": {"error_rate": 1.0, "error_status": 502}})
    body = await gateway.query(LIST_QUERY, {"first": 100})
    sources = {e["node"]["source"] for e in body["data"]["liveEvents"]["edges"]}
    assert sources == {"LOOP_SESSION", "STREAMLOOP_STREAM"}
    [error] = body["errors"]
    assert error["path"] == ["liveEvents"]
    assert error["extensions"]["vendor"] == "LIVEPUSH"
    assert error["extensions"]["code"] == "VENDOR_UNAVAILABLE"


async def test_paging_forward_and_backward_visits_each_once_while_events_are_added(
    sim: Sim, gateway: Gateway, make_gateway: Callable[..., Any]
) -> None:
    ids = await seed(sim, 9)
    expected = set(global_ids({s: v for s, v in ids.items() if s is not Source.LOOP_CALL}))
    forward = await walk(gateway, "forward", 4)
    assert len(forward) == len(set(forward)) == len(expected)
    assert set(forward) == expected

    # Events added between pages, and listed before the next one: none of the old ones is skipped or
    # repeated, and each new one shows up once or not at all (it may sort before the cursor).
    async with make_gateway(index_refresh_interval=0) as relisting:
        first_page = await relisting.query(LIST_QUERY, {"first": 5})
        cursor = first_page["data"]["liveEvents"]["pageInfo"]["endCursor"]
        seen = [e["node"]["id"] for e in first_page["data"]["liveEvents"]["edges"]]
        added = await sim.control("POST", "seed", {"seed": 99, "count": 2})
        while cursor:
            body = await relisting.query(LIST_QUERY, {"first": 5, "after": cursor})
            conn = body["data"]["liveEvents"]
            seen.extend(e["node"]["id"] for e in conn["edges"])
            cursor = conn["pageInfo"]["endCursor"] if conn["pageInfo"]["hasNextPage"] else None
    assert len(seen) == len(set(seen))
    assert expected <= set(seen)
    new_ids = set(global_ids({s: added[k] for s, k in SOURCE_KEYS.items() if s is not Source.LOOP_CALL}))
    assert set(seen) - expected <= new_ids
    assert set(seen) & new_ids  # the re-listing did happen: some new events came after the cursor

    backward = await walk(gateway, "backward", 4)
    assert len(backward) == len(set(backward))
    assert list(reversed(backward)) == await walk(gateway, "forward", 7)


async def test_filters_and_total_count(sim: Sim, gateway: Gateway) -> None:
    await seed(sim, 8)
    everything = await walk(gateway, "forward", 100)
    live = await gateway.query(LIST_QUERY, {"first": 100, "filter": {"isLive": True}})
    conn = live["data"]["liveEvents"]
    assert conn["totalCount"] == len(conn["edges"]) > 0
    assert all(e["node"]["isLive"] for e in conn["edges"])
    by_source = await gateway.query(
        LIST_QUERY, {"first": 100, "filter": {"sources": ["LOOP_SESSION"], "statuses": ["SCHEDULED"]}}
    )
    nodes = [e["node"] for e in by_source["data"]["liveEvents"]["edges"]]
    assert nodes and all(n["source"] == "LOOP_SESSION" and n["status"] == "SCHEDULED" for n in nodes)
    assert len(everything) == 24


async def test_page_size_is_bounded(gateway: Gateway) -> None:
    body = await gateway.query(LIST_QUERY, {"first": 101})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "retryable": False, "field": "first"}


async def test_vendors_health(sim: Sim, gateway: Gateway) -> None:
    body = await gateway.query("{ vendors { vendor configured reachable lastErrorCode } }")
    assert body["data"]["vendors"] == [
        {"vendor": v, "configured": True, "reachable": None, "lastErrorCode": None}
        for v in ("LOOP", "STREAMLOOP", "LIVEPUSH")
    ]
    await sim.control("POST", "faults", {"livepush": {"error_rate": 1.0}})
    await gateway.query(LIST_QUERY, {"first": 1})
    body = await gateway.query("{ vendors { vendor reachable lastErrorCode } }")
    by_vendor = {v["vendor"]: v for v in body["data"]["vendors"]}
    assert by_vendor["LIVEPUSH"] == {
        "vendor": "LIVEPUSH",
        "reachable": False,
        "lastErrorCode": "VENDOR_UNAVAILABLE",
    }
    assert by_vendor["STREAMLOOP"]["reachable"] is True


async def test_an_id_cannot_reach_another_vendor_route(sim: Sim, gateway: Gateway) -> None:
    ids = await seed(sim, 1)
    real = ids[Source.STREAMLOOP_STREAM][0]
    sneaky = encode_global_id(Source.STREAMLOOP_STREAM, f"nope/../{real}")
    body = await gateway.query(f'mutation {{ deleteLiveEvent(id: "{sneaky}") {{ deletedId }} }}')
    assert body["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    still_there = encode_global_id(Source.STREAMLOOP_STREAM, real)
    read = await gateway.query(f'{{ liveEvent(id: "{still_there}") {{ nativeId }} }}')
    assert read["data"]["liveEvent"] == {"nativeId": real}
    assert (
        await gateway.query(
            f'{{ liveEvent(id: "{encode_global_id(Source.LOOP_SESSION, "../live/sessions")}") {{ id }} }}'
        )
    ) == {"data": {"liveEvent": None}}


async def test_a_missing_event_does_not_count_against_the_vendor(sim: Sim, gateway: Gateway) -> None:
    missing = encode_global_id(Source.STREAMLOOP_STREAM, "stream_01JN0000000000000000000000")
    await gateway.query(f'{{ liveEvent(id: "{missing}") {{ id }} }}')
    body = await gateway.query("{ vendors { vendor reachable lastErrorCode } }")
    by_vendor = {v["vendor"]: v for v in body["data"]["vendors"]}
    assert by_vendor["STREAMLOOP"] == {"vendor": "STREAMLOOP", "reachable": True, "lastErrorCode": None}


async def test_total_count_through_fragments(sim: Sim, gateway: Gateway) -> None:
    await seed(sim, 3)
    body = await gateway.query(
        "fragment Counted on LiveEventConnection { totalCount } "
        "{ a: liveEvents(first: 1) { ...Counted } "
        "b: liveEvents(first: 1) { ... on LiveEventConnection { totalCount } } }"
    )
    assert body["data"] == {"a": {"totalCount": 9}, "b": {"totalCount": 9}}


async def test_detail_fields_survive_a_read_through_a_listing(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Any
) -> None:
    never_fresh = settings_for().livepush.model_copy(update={"fresh_for": 0})
    async with make_gateway(livepush=never_fresh) as gw:
        created = await gw.query(
            'mutation { createLiveEvent(input: {title: "Push", targets: {livepush: {category: SIMULCAST}}}) '
            "{ events { id ... on LivepushStream { chatId embedId } } } }"
        )
        [event] = created["data"]["createLiveEvent"]["events"]
        assert event["chatId"] and event["embedId"]
        read = await gw.query(
            f'{{ liveEvent(id: "{event["id"]}") {{ freshness {{ servedFrom }} '
            "... on LivepushStream { chatId embedId } } }"
        )
    assert read["data"]["liveEvent"] == {
        "freshness": {"servedFrom": "VENDOR"},
        "chatId": event["chatId"],
        "embedId": event["embedId"],
    }


async def test_a_hanging_vendor_is_asked_once_by_concurrent_listings(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Any
) -> None:
    await seed(sim, 2)
    quick = settings_for().livepush.model_copy(update={"read_timeout": 0.3, "connect_timeout": 0.3})
    async with make_gateway(livepush=quick) as gw:
        await sim.control("POST", "faults", {"livepush": {"hang": True}})
        answers = await asyncio.gather(*(gw.query(LIST_QUERY, {"first": 100}) for _ in range(6)))
    # One listing was tried (with its retries); the requests that waited for it share its failure instead
    # of trying in turn.
    assert await sim.vendor_requests("livepush") == 1 + quick.retries
    for body in answers:
        assert [e["extensions"]["vendor"] for e in body["errors"]] == ["LIVEPUSH"]
        assert {e["node"]["source"] for e in body["data"]["liveEvents"]["edges"]} == {
            "LOOP_SESSION",
            "STREAMLOOP_STREAM",
        }
