"""Identical queries in flight share one execution, even when nothing may be kept (FRESH_FOR=0): counted in
executions and vendor calls. Other roles and other variables execute apart; answers with errors are not
shared; a client that goes away cancels nothing for the others. An answer given again (a hit, a shared
answer) is refused exactly as an execution would be: without credentials, over the rate limit, for a
document the caller may not run."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp
import orjson
from multidict import CIMultiDict

from gateway.ids import encode_global_id
from gateway.model import Source
from gateway.response_cache import Template, document_shape
from gateway.settings import DocumentMode, DocumentSettings, LimitSettings, ResponseCacheSettings, Role, Settings
from tests.conftest import Sim
from tests.gateway_harness import Gateway, auth_header, token_for
from tests.test_observability import scrape, total
from tests.test_read_path import reset_counts, seed

ONE = """query One($id: ID!) {
  liveEvent(id: $id) { id title status freshness { fetchedAt ageSeconds stale servedFrom } }
}"""
PAGE = "query Page { liveEvents(first: 5) { totalCount edges { node { id title } } } }"
VENDORS = ("loop", "streamloop", "livepush")


def cold(settings_for: Callable[..., Settings]) -> dict[str, Any]:
    """Every vendor's reads cold (FRESH_FOR=0): no answer that reads an event by id can be kept."""
    settings = settings_for()
    return {name: getattr(settings, name).model_copy(update={"fresh_for": 0, "retries": 0}) for name in VENDORS}


async def ask(
    gw: Gateway, query: str, variables: dict[str, Any] | None = None, role: Role = Role.VIEWER
) -> tuple[int, str | None, dict[str, Any]]:
    body = {"query": query, "variables": variables or {}}
    async with gw.http.post(f"{gw.url}/graphql", json=body, headers=auth_header(role)) as resp:
        return resp.status, resp.headers.get("X-Cache"), await resp.json()


async def executions(gw: Gateway) -> float:
    return total(await scrape(gw), "live_gateway_graphql_requests_total")


async def shared_answers(gw: Gateway) -> float:
    return total(await scrape(gw), "live_gateway_response_cache_total", result="shared")


def stream_id(ids: dict[Source, list[str]], n: int = 0) -> str:
    return encode_global_id(Source.STREAMLOOP_STREAM, ids[Source.STREAMLOOP_STREAM][n])


@contextlib.asynccontextmanager
async def cold_gateway(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings], **overrides: Any
) -> AsyncIterator[tuple[Gateway, str]]:
    """A gateway whose reads are all cold, and the global id of a seeded Streamloop stream to read."""
    ids = await seed(sim, 2)
    async with make_gateway(**cold(settings_for), **overrides) as gw:
        yield gw, stream_id(ids)


async def first_then_waiters(
    gw: Gateway, one: str, waiters: int = 4
) -> tuple[tuple[int, str | None, dict[str, Any]], list[tuple[int, str | None, dict[str, Any]]]]:
    """One read of `one` executing (the vendor is slow), then `waiters` identical reads that come meanwhile."""
    first = asyncio.ensure_future(ask(gw, ONE, {"id": one}))
    await asyncio.sleep(0.1)  # the first is executing
    answers = await asyncio.gather(*(ask(gw, ONE, {"id": one}) for _ in range(waiters)))
    return await first, answers


async def test_identical_queries_in_flight_share_one_execution_and_one_vendor_call_though_nothing_is_kept(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    ids = await seed(sim, 2)
    one = stream_id(ids)
    async with make_gateway(**cold(settings_for)) as gw:
        await sim.control("POST", "faults", {"streamloop": {"latency_ms": 300}})
        await reset_counts(sim)
        ran = await executions(gw)
        answers = await asyncio.gather(*(ask(gw, ONE, {"id": one}) for _ in range(20)))
        assert sorted(status for _, status, _ in answers) == ["MISS"] + ["SHARED"] * 19
        assert {code for code, _, _ in answers} == {200}
        # Each waiter has the executing request's answer, as it was made: read from the vendor just now.
        bodies = [body for _, _, body in answers]
        assert all(body == bodies[0] and "errors" not in body for body in bodies)
        assert bodies[0]["data"]["liveEvent"]["freshness"]["servedFrom"] == "VENDOR"
        assert await executions(gw) == ran + 1
        assert await sim.vendor_requests() == 1
        assert await shared_answers(gw) == 19
        assert len(gw.services.responses) == 0  # nothing kept: a cold read is fresh for no time at all

        # Another role, other variables: executions of their own (the vendor read is still shared in flight).
        await reset_counts(sim)
        ran = await executions(gw)
        other = stream_id(ids, 1)
        mixed = await asyncio.gather(
            *(ask(gw, ONE, {"id": one}) for _ in range(5)),
            *(ask(gw, ONE, {"id": one}, Role.OPERATOR) for _ in range(5)),
            *(ask(gw, ONE, {"id": other}) for _ in range(5)),
        )
        assert sorted(status for _, status, _ in mixed) == ["MISS"] * 3 + ["SHARED"] * 12
        assert await executions(gw) == ran + 3
        assert await sim.vendor_requests() == 2
        assert [body["data"]["liveEvent"]["id"] for _, _, body in mixed] == [one] * 10 + [other] * 5


async def test_a_shared_answer_carries_the_status_and_headers_a_lone_request_gets(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    async with cold_gateway(sim, make_gateway, settings_for) as (gw, one):
        await sim.control("POST", "faults", {"streamloop": {"latency_ms": 300}})
        params = {"query": ONE, "variables": orjson.dumps({"id": one}).decode()}

        async def get(accept: str) -> tuple[int, CIMultiDict[str], bytes]:
            headers = {**auth_header(Role.VIEWER), "Accept": accept}
            async with gw.http.get(f"{gw.url}/graphql", params=params, headers=headers) as resp:
                return resp.status, resp.headers.copy(), await resp.read()

        answers = await asyncio.gather(*(get("application/graphql-response+json") for _ in range(4)), get("*/*"))
        assert sorted(headers["X-Cache"] for _, headers, _ in answers) == ["MISS"] + ["SHARED"] * 4
        for status, headers, body in answers:
            assert status == 200 and body == answers[0][2]
            assert headers["Cache-Control"] == "no-cache"  # not kept: a cold read is fresh for no time
            assert headers["ETag"] == answers[0][1]["ETag"]
            assert headers["Vary"] == "Accept, Accept-Encoding, Authorization, X-API-Key"
            assert headers["X-Request-Id"]
        # Each in the media type it asked for.
        assert [headers["Content-Type"] for _, headers, _ in answers] == [
            "application/graphql-response+json; charset=utf-8"
        ] * 4 + ["application/json; charset=utf-8"]
        assert len({headers["X-Request-Id"] for _, headers, _ in answers}) == 5


async def test_an_answer_with_errors_is_not_shared_each_waiter_executes_its_own(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    async with cold_gateway(sim, make_gateway, settings_for) as (gw, one):
        await sim.control("POST", "faults", {"streamloop": {"latency_ms": 300, "error_burst": 1, "error_status": 503}})
        await reset_counts(sim)
        ran = await executions(gw)
        (_, first_status, first_body), answers = await first_then_waiters(gw, one)
        assert first_status == "MISS" and first_body["errors"][0]["extensions"]["code"] == "VENDOR_UNAVAILABLE"
        # The four waited, were not given the error, and executed: together (their vendor read shared in flight).
        assert [status for _, status, _ in answers] == ["MISS"] * 4
        assert all(body["data"]["liveEvent"]["id"] == one for _, _, body in answers)
        assert await executions(gw) == ran + 5
        assert await sim.vendor_requests() == 2
        assert await shared_answers(gw) == 0


async def test_an_answer_that_read_a_stale_copy_is_not_shared(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    async with cold_gateway(sim, make_gateway, settings_for) as (gw, one):
        await ask(gw, ONE, {"id": one})  # a copy in MongoDB, for when the vendor fails
        await gw.services.store.events.settled()
        await sim.control("POST", "faults", {"streamloop": {"latency_ms": 300, "error_burst": 1, "error_status": 503}})
        await reset_counts(sim)
        ran = await executions(gw)
        (_, first_status, first_body), answers = await first_then_waiters(gw, one)
        # The vendor failed the first: it answered the stale copy, without an error, and kept it to itself.
        assert first_status == "MISS" and "errors" not in first_body
        assert first_body["data"]["liveEvent"]["freshness"]["stale"] is True
        assert [status for _, status, _ in answers] == ["MISS"] * 4
        assert {body["data"]["liveEvent"]["freshness"]["stale"] for _, _, body in answers} == {False}
        assert await executions(gw) == ran + 5
        assert await sim.vendor_requests() == 2


async def test_a_client_that_goes_away_cancels_nothing_for_the_others(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    # The test server cancels a handler whose client went away (production's does not): the harder case.
    async with cold_gateway(sim, make_gateway, settings_for) as (gw, one):
        await sim.control("POST", "faults", {"streamloop": {"latency_ms": 400}})
        await reset_counts(sim)
        ran = await executions(gw)
        executing = asyncio.ensure_future(ask(gw, ONE, {"id": one}))
        await asyncio.sleep(0.1)
        leaving = [asyncio.ensure_future(ask(gw, ONE, {"id": one})) for _ in range(2)]
        staying = [asyncio.ensure_future(ask(gw, ONE, {"id": one})) for _ in range(3)]
        await asyncio.sleep(0.1)
        for client in [executing, *leaving]:  # their connections close
            client.cancel()
        answers = await asyncio.gather(*staying)
        assert [status for _, status, _ in answers] == ["SHARED"] * 3
        assert all(body["data"]["liveEvent"]["id"] == one for _, _, body in answers)
        assert await executions(gw) == ran + 1
        assert await sim.vendor_requests() == 1


async def kept(gw: Gateway, query: str, role: Role = Role.VIEWER) -> dict[str, Any]:
    """Asks until the answer comes from the response cache (its first answer's write-backs have settled)."""
    for _ in range(20):
        _, status, body = await ask(gw, query, role=role)
        if status == "HIT":
            return body
        await gw.services.store.events.settled()
        await asyncio.sleep(0.1)
    raise AssertionError(f"{query} is never kept")


async def test_an_answer_given_again_is_refused_as_an_execution_would_be(
    sim: Sim, make_gateway: Callable[..., Any]
) -> None:
    await seed(sim, 3)
    async with make_gateway(changes_poll_interval=0.05, limits=LimitSettings(rate_limit="10/minute")) as gw:
        url = f"{gw.url}/graphql"
        await kept(gw, PAGE, Role.ADMIN)
        # Another role is not given the admin's answer: its own execution decides what it may see.
        assert (await ask(gw, PAGE, role=Role.VIEWER))[1] == "MISS"
        body = {"query": PAGE}
        async with aiohttp.ClientSession() as anonymous:
            # No credentials, or expired ones: 401, though the answer is at hand.
            async with anonymous.post(url, json=body) as resp:
                assert resp.status == 401 and "X-Cache" not in resp.headers
            expired = {"Authorization": f"Bearer {token_for(Role.ADMIN, ttl=-120)}"}
            async with anonymous.post(url, json=body, headers=expired) as resp:
                assert resp.status == 401
            # Over the rate limit (ten a minute): 429 with Retry-After.
            statuses = []
            for _ in range(11):
                async with anonymous.post(url, json=body, headers=auth_header(Role.ADMIN, "limited")) as resp:
                    statuses.append((resp.status, resp.headers.get("X-Cache")))
            assert statuses[:10] == [(200, "HIT")] * 10
            assert statuses[10] == (429, None)
        hits = total(await scrape(gw), "live_gateway_response_cache_total", result="hit")
        assert hits >= 10


async def test_a_kept_answer_is_not_given_to_a_caller_who_may_not_run_its_document(
    sim: Sim, make_gateway: Callable[..., Any]
) -> None:
    await seed(sim, 3)
    trusted = DocumentSettings(mode=DocumentMode.TRUSTED, exempt_roles=[Role.ADMIN])
    async with make_gateway(changes_poll_interval=0.05, documents=trusted) as gw:
        await kept(gw, PAGE, Role.ADMIN)
        # The same text from a role that may run trusted documents only: refused, as executing it would be.
        for role in (Role.VIEWER, Role.OPERATOR):
            status, cache_status, body = await ask(gw, PAGE, role=role)
            assert status == 403 and cache_status is None
            assert body["errors"][0]["extensions"]["code"] == "DOCUMENT_NOT_TRUSTED"
        # Each role has answers of its own: the admin's kept answer is no other role's.
        assert gw.services.responses.key(PAGE, {}, None, "admin") != gw.services.responses.key(PAGE, {}, None, "viewer")


async def test_an_execution_holds_its_waiters_no_longer_than_the_coalesce_wait(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    waiting = ResponseCacheSettings(coalesce_wait=0.1)
    async with cold_gateway(sim, make_gateway, settings_for, response_cache=waiting) as (gw, one):
        await sim.control("POST", "faults", {"streamloop": {"latency_ms": 500}})
        await reset_counts(sim)
        ran = await executions(gw)
        first = asyncio.ensure_future(ask(gw, ONE, {"id": one}))
        await asyncio.sleep(0.05)
        answers = await asyncio.gather(*(ask(gw, ONE, {"id": one}) for _ in range(3)), first)
        # The three waited 0.1 s at most, then executed their own (their vendor read shared the one in flight).
        assert [status for _, status, _ in answers] == ["MISS"] * 4
        assert all(body["data"]["liveEvent"]["id"] == one for _, _, body in answers)
        assert await executions(gw) == ran + 4
        assert await sim.vendor_requests() == 1


def test_a_kept_answer_is_its_body_with_every_age_written_anew() -> None:
    query = "{ nodes(ids: [1, 2]) { id ... on LoopCall { title freshness { ageSeconds servedFrom } } } }"
    shape = document_shape(query, None)
    assert shape.cacheable and shape.age_keys == {"ageSeconds"} and shape.served_keys == {"servedFrom"}
    made = {
        "nodes": [
            {"id": "a", "title": "ageSeconds servedFrom", "freshness": {"ageSeconds": 1.25, "servedFrom": "VENDOR"}},
            None,
            {"id": "b", "title": "\u0000", "freshness": {"ageSeconds": 0.000001, "servedFrom": "CACHE"}},
        ]
    }
    template = Template.of(made, shape)
    assert template is not None and len(template.ages) == 2
    again = orjson.loads(template.body(2.0000004))
    assert again["data"]["nodes"][0]["freshness"] == {"ageSeconds": 3.25, "servedFrom": "CACHE"}
    assert again["data"]["nodes"][2]["freshness"] == {"ageSeconds": 2.000001, "servedFrom": "CACHE"}
    assert again["data"]["nodes"][0]["title"] == "ageSeconds servedFrom" and again["data"]["nodes"][1] is None
    assert made["nodes"][0]["freshness"]["servedFrom"] == "VENDOR"  # the answer itself is left as it was
    # Nothing to write anew: the body as it was encoded.
    plain = document_shape("{ liveEvent(id: 1) { id title } }", None)
    kept = Template.of({"liveEvent": {"id": "a", "title": "t"}}, plain)
    assert kept is not None and kept.body(5.0) == b'{"data":{"liveEvent":{"id":"a","title":"t"}}}'
