"""A native id is the vendor's and nothing else: an id that cannot be one of the vendor's never reaches it,
and no id can change the route a call goes to."""

from __future__ import annotations

import pytest

from gateway.ids import encode_global_id
from gateway.model import Source
from gateway.vendors.base import segment
from tests.conftest import Sim
from tests.gateway_harness import Gateway

#: dot segments (removed by URL normalization), the vendors' own words for "the caller's" objects, and
#: characters that end a path segment
ROUTE_CHANGERS = ["..", ".", "mine", "me", "%2e%2e", "a/b", "x?y=1", "x#y", " ", "st_../me"]

VERBS = {
    Source.LOOP_CALL: ["stopLiveEvent", "refreshLiveEvent"],
    Source.LOOP_SESSION: ["cancelLiveEvent", "refreshLiveEvent"],
    Source.STREAMLOOP_STREAM: ["startLiveEvent", "stopLiveEvent", "deleteLiveEvent", "refreshLiveEvent"],
    Source.LIVEPUSH_STREAM: ["deleteLiveEvent", "refreshLiveEvent"],
}


async def test_an_id_that_is_not_the_vendors_reaches_no_vendor(sim: Sim, gateway: Gateway) -> None:
    await sim.control("POST", "seed", {"seed": 3, "count": 1})
    await sim.control("POST", "reset", {"stats_only": True})
    ids = [encode_global_id(source, native) for source in Source for native in ROUTE_CHANGERS]
    # A read of such ids finds nothing, as a read of any missing event ...
    body = await gateway.query("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})
    assert body == {"data": {"nodes": [None] * len(ids)}}
    for source, verbs in VERBS.items():
        for native in ROUTE_CHANGERS:
            global_id = encode_global_id(source, native)
            for verb in verbs:
                selection = "deletedId" if verb == "deleteLiveEvent" else "event { id }"
                answer = await gateway.query(f'mutation {{ {verb}(id: "{global_id}") {{ {selection} }} }}')
                # ... and a verb on one is NOT_FOUND, as on any missing event.
                assert answer["errors"][0]["extensions"]["code"] == "NOT_FOUND", (source, native, verb, answer)
    # Neither sent anything to any vendor, with the gateway's credentials or otherwise.
    assert await sim.vendor_requests() == 0, (await sim.stats())["requests"]
    # And nobody else sees a vendor as unreachable because of them.
    vendors = await gateway.query("{ vendors { vendor reachable lastErrorCode } }")
    for vendor in vendors["data"]["vendors"]:
        assert vendor["lastErrorCode"] is None, vendor
        assert vendor["reachable"] is not False, vendor


async def test_real_ids_still_reach_their_vendor(sim: Sim, gateway: Gateway) -> None:
    seeded = await sim.control("POST", "seed", {"seed": 3, "count": 1})
    keys = {"loop_call": Source.LOOP_CALL, "loop_session": Source.LOOP_SESSION}
    keys |= {"streamloop_stream": Source.STREAMLOOP_STREAM, "livepush_stream": Source.LIVEPUSH_STREAM}
    ids = [encode_global_id(source, seeded[key][0]) for key, source in keys.items()]
    body = await gateway.query("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ids})
    assert [node["id"] for node in body["data"]["nodes"]] == ids


@pytest.mark.parametrize("value", ["..", ".", "a/b", "a?b", "a#b", "%2e", "a b", "é"])
def test_a_path_segment_is_escaped_whole(value: str) -> None:
    escaped = segment(value)
    assert escaped not in (".", "..")
    assert all(ch.isalnum() or ch in "-_~%" for ch in escaped), escaped
