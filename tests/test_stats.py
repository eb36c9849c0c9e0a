"""`liveEventStats` agrees with what paging `liveEvents` with the same filter shows."""

from __future__ import annotations

from collections import Counter
from datetime import datetime, timedelta
from typing import Any

import pytest

from gateway.ids import encode_global_id
from gateway.model import Source, Status
from tests.conftest import Sim
from tests.gateway_harness import Gateway

PAGE = """
query($filter: LiveEventFilter, $after: String) {
  liveEvents(first: 50, after: $after, filter: $filter) {
    edges { node { source status isLive scheduledStart endedAt recordings { url } } }
    pageInfo { hasNextPage endCursor }
  }
}"""

STATS = """
query($filter: LiveEventFilter, $starting: Int!, $ended: Int!) {
  liveEventStats(filter: $filter, startingWithinSeconds: $starting, endedWithinSeconds: $ended) {
    asOf total liveNow startingSoon endedWithRecording endedWithoutRecording
    byStatus { status count } bySource { source count }
    vendors { vendor configured }
  }
}"""


async def every_event(gateway: Gateway, filter: dict[str, Any] | None) -> list[dict[str, Any]]:
    nodes: list[dict[str, Any]] = []
    cursor = None
    while True:
        body = await gateway.query(PAGE, {"filter": filter, "after": cursor})
        conn = body["data"]["liveEvents"]
        nodes.extend(edge["node"] for edge in conn["edges"])
        if not conn["pageInfo"]["hasNextPage"]:
            return nodes
        cursor = conn["pageInfo"]["endCursor"]


def instant(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


@pytest.mark.parametrize(
    "filter",
    [
        None,
        {"vendors": ["LOOP"]},
        {"sources": ["STREAMLOOP_STREAM", "LIVEPUSH_STREAM"], "statuses": ["LIVE", "ENDED", "FAILED", "DRAFT"]},
        {"isLive": False},
    ],
)
async def test_stats_equal_the_counts_of_paging(sim: Sim, gateway: Gateway, filter: dict[str, Any] | None) -> None:
    ids = await sim.control("POST", "seed", {"seed": 11, "count": 30})
    # Loop calls enter the index when first read.
    nodes_query = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    calls = ids["loop_call"]
    await gateway.query(nodes_query, {"ids": [encode_global_id(Source.LOOP_CALL, c) for c in calls]})
    # Two more calls end during the test, one of them with its recording ready.
    for with_recording in (True, False):
        created = await gateway.query(
            'mutation { createLiveEvent(input: {title: "Call", hostId: "h", targets: {loopCall: {}}}) '
            "{ events { id nativeId } } }"
        )
        [event] = created["data"]["createLiveEvent"]["events"]
        for trigger in ("session-start", "session-end", *(["recording-ready"] if with_recording else [])):
            await sim.control("POST", f"loop/calls/{event['nativeId']}/{trigger}")
        await gateway.query(f'mutation {{ refreshLiveEvent(id: "{event["id"]}") {{ event {{ id }} }} }}')

    starting, ended = 6 * 3600, 2 * 86400
    body = await gateway.query(STATS, {"filter": filter, "starting": starting, "ended": ended})
    assert "errors" not in body, body
    stats = body["data"]["liveEventStats"]
    now = datetime.fromisoformat(stats["asOf"])
    nodes = await every_event(gateway, filter)

    assert stats["total"] == len(nodes) > 0
    by_status = Counter(n["status"] for n in nodes)
    assert {row["status"]: row["count"] for row in stats["byStatus"]} == {s.value: by_status[s.value] for s in Status}
    by_source = Counter(n["source"] for n in nodes)
    assert {row["source"]: row["count"] for row in stats["bySource"]} == {s.value: by_source[s.value] for s in Source}
    assert stats["liveNow"] == sum(n["isLive"] for n in nodes)
    assert stats["startingSoon"] == sum(
        1
        for n in nodes
        if (start := instant(n["scheduledStart"])) is not None and now <= start < now + timedelta(seconds=starting)
    )
    recently_ended = [
        n for n in nodes if (end := instant(n["endedAt"])) is not None and now - timedelta(seconds=ended) <= end <= now
    ]
    assert stats["endedWithRecording"] == sum(bool(n["recordings"]) for n in recently_ended)
    assert stats["endedWithoutRecording"] == sum(not n["recordings"] for n in recently_ended)
    assert [v["vendor"] for v in stats["vendors"]] == ["LOOP", "STREAMLOOP", "LIVEPUSH"]


async def test_the_counts_are_not_all_trivial(sim: Sim, gateway: Gateway) -> None:
    """The seed gives every count something to count, so the comparison above means something."""
    await sim.control("POST", "seed", {"seed": 11, "count": 30})
    body = await gateway.query(STATS, {"filter": None, "starting": 6 * 3600, "ended": 2 * 86400})
    stats = body["data"]["liveEventStats"]
    assert stats["liveNow"] > 0
    assert stats["startingSoon"] > 0
    assert stats["endedWithRecording"] + stats["endedWithoutRecording"] > 0
    assert sum(1 for row in stats["byStatus"] if row["count"]) >= 4


async def test_negative_window_is_bad_input(gateway: Gateway) -> None:
    body = await gateway.query(STATS, {"filter": None, "starting": -1, "ended": 1})
    assert body["errors"][0]["extensions"]["field"] == "startingWithinSeconds"
