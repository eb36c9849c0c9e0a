"""Queries over a limit are refused with a clear error before any vendor is called."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from graphql import OperationDefinitionNode, get_introspection_query

from gateway.limits import DOCUMENT_CACHE_SIZE, QueryCost, validation_cache
from gateway.settings import LimitSettings
from tests.conftest import Sim
from tests.gateway_harness import Gateway

EVENT = "id title status"
ROOT = Path(__file__).resolve().parent.parent


async def refused(gw: Gateway, sim: Sim, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
    before = await sim.vendor_requests()
    status, body = await gw.post(query, variables)
    assert status in (200, 400)
    assert "data" not in body or body["data"] is None
    [error] = body["errors"]
    assert error["extensions"]["code"] == "QUERY_TOO_COMPLEX", error
    assert await sim.vendor_requests() == before
    return error


LIMITS = LimitSettings(
    max_depth=3, max_aliases=5, max_tokens=400, max_cost=400, default_list_size=20, introspection_cost=100
)


@pytest.fixture
async def limited(make_gateway: Callable[..., Any]) -> Any:
    async with make_gateway(limits=LIMITS) as gw:
        yield gw


async def test_a_deep_query_is_refused(limited: Gateway, sim: Sim) -> None:
    # liveEvents > edges > node > freshness > servedFrom: the deepest path the schema has, 4 below the root
    shallow = "{ liveEvents { edges { node { id } } } }"
    assert "errors" not in (await limited.post(shallow))[1]
    deep = "{ liveEvents { edges { node { ... on LiveEvent { freshness { servedFrom } } } } } }"
    error = await refused(limited, sim, deep)
    assert "exceeds maximum operation depth of 3" in error["message"]
    # Depth through a fragment counts the same.
    spread = "{ liveEvents { edges { node { ...F } } } } fragment F on LiveEvent { freshness { servedFrom } }"
    await refused(limited, sim, spread)


async def test_many_aliases_are_refused(limited: Gateway, sim: Sim) -> None:
    query = "{ " + " ".join(f"v{i}: vendors {{ vendor }}" for i in range(6)) + " }"
    error = await refused(limited, sim, query)
    assert "aliases" in error["message"]


async def test_a_wide_document_is_refused_by_its_tokens(limited: Gateway, sim: Sim) -> None:
    query = "{ vendors { " + " ".join(["vendor"] * 500) + " } }"
    error = await refused(limited, sim, query)
    assert "tokens" in error["message"]


async def test_a_costly_page_is_refused_with_its_cost(limited: Gateway, sim: Sim) -> None:
    query = f"{{ liveEvents(first: 100) {{ edges {{ node {{ {EVENT} }} }} }} }}"
    error = await refused(limited, sim, query)
    # 1 (liveEvents) + 4 vendor listings it may refresh + 100 x (edges 1 + node (1 + 3 fields))
    assert error["extensions"]["cost"] == 1 + 4 * 10 + 100 * (1 + 1 + 3)
    assert error["extensions"]["maxCost"] == 400
    assert "first/last" in error["message"]


async def test_cost_counts_a_size_given_in_a_variable(limited: Gateway, sim: Sim) -> None:
    query = f"query($n: Int) {{ liveEvents(first: $n) {{ edges {{ node {{ {EVENT} }} }} }} }}"
    await refused(limited, sim, query, {"n": 100})
    status, body = await limited.post(query, {"n": 10})
    assert status == 200 and "errors" not in body


async def test_cost_counts_a_batch_of_ids(limited: Gateway, sim: Sim) -> None:
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { ... on LiveEvent { id title status vendorStatus } } }"
    error = await refused(limited, sim, query, {"ids": [f"id{i}" for i in range(200)]})
    # one vendor call per id (10 each) and the selection per id
    assert error["extensions"]["cost"] == 1 + 200 * 10 + 200 * 4


async def test_a_page_without_a_size_counts_as_the_default(limited: Gateway, sim: Sim) -> None:
    # 1 + 20 x (1 + 1 + 3) = 101 passes; 1 + 20 x (1 + 1 + 30) = 681 does not.
    status, body = await limited.post(f"{{ liveEvents {{ edges {{ node {{ {EVENT} }} }} }} }}")
    assert status == 200 and "errors" not in body
    many = " ".join(f"f{i}: title" for i in range(5)) + " " + " ".join(["id title status"] * 9)
    error = await refused(limited, sim, f"{{ liveEvents {{ edges {{ node {{ {many} }} }} }} }}")
    assert error["extensions"]["cost"] > 400


async def test_graphiql_introspection_passes_the_limits(limited: Gateway) -> None:
    status, body = await limited.post(get_introspection_query(descriptions=True))
    assert status == 200 and "errors" not in body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_a_body_over_the_size_limit_is_413(make_gateway: Callable[..., Any], sim: Sim) -> None:
    async with make_gateway(limits=LimitSettings(max_body_bytes=4096)) as gw:
        query = "{ vendors { vendor } }" + " " * 5000
        async with gw.http.post(f"{gw.url}/graphql", json={"query": query}) as resp:
            assert resp.status == 413
        assert await sim.vendor_requests() == 0


async def test_nodes_takes_at_most_a_page_of_ids(gateway: Gateway, sim: Sim) -> None:
    body = await gateway.query("query($ids: [ID!]!) { nodes(ids: $ids) { id } }", {"ids": ["x"] * 101})
    assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "retryable": False, "field": "ids"}
    assert await sim.vendor_requests() == 0


async def test_a_query_text_is_validated_once_and_its_errors_every_time(limited: Gateway) -> None:
    cache = validation_cache(DOCUMENT_CACHE_SIZE)
    valid = "{ vendors { vendor } }"
    invalid = "{ vendors { noSuchField } }"
    before = cache.cache_info()
    for _ in range(3):
        assert "errors" not in (await limited.post(valid))[1]
        _, body = await limited.post(invalid)
        assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    after = cache.cache_info()
    assert (after.misses - before.misses, after.hits - before.hits) == (2, 4)


async def test_a_cost_within_the_limit_is_worked_out_once_per_document_and_sizes(
    limited: Gateway, sim: Sim, monkeypatch: pytest.MonkeyPatch
) -> None:
    walks: list[OperationDefinitionNode] = []
    walk = QueryCost.of

    def counted(self: QueryCost, operation: OperationDefinitionNode) -> int | None:
        walks.append(operation)
        return walk(self, operation)

    monkeypatch.setattr(QueryCost, "of", counted)
    node = "id status title @include(if: $full)"
    query = f"query($n: Int, $full: Boolean!) {{ liveEvents(first: $n) {{ edges {{ node {{ {node} }} }} }} }}"
    # Other variables than the sizes do not change the cost: one walk for all three.
    for full in (True, False, True):
        assert "errors" not in (await limited.post(query, {"n": 10, "full": full}))[1]
    assert len(walks) == 1
    # Another size is walked; one over the limit is walked and refused every time, with its cost.
    assert "errors" not in (await limited.post(query, {"n": 5, "full": True}))[1]
    assert len(walks) == 2
    for _ in range(2):
        error = await refused(limited, sim, query, {"n": 100, "full": True})
        assert error["extensions"]["cost"] == 1 + 4 * 10 + 100 * (1 + 1 + 3)
    assert len(walks) == 4
    # A size that does not coerce is not remembered as within the limit: execution refuses it each time.
    for _ in range(2):
        _, body = await limited.post(query, {"n": "many", "full": True})
        assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    assert len(walks) == 6


@pytest.mark.parametrize(
    ("query", "variables"),
    [
        (f"query($n: Int = 100) {{ liveEvents(first: $n) {{ edges {{ node {{ {EVENT} }} }} }} }}", {}),
        (f"query($n: Int) {{ liveEvents(first: $n) {{ edges {{ node {{ {EVENT} }} }} }} }}", {"n": 100.0}),
        (f"query($n: Int = 10) {{ liveEvents(first: $n) {{ edges {{ node {{ {EVENT} }} }} }} }}", {"n": 100}),
    ],
    ids=["variable-default", "float-value", "value-over-default"],
)
async def test_cost_counts_a_page_size_as_it_is_coerced(
    limited: Gateway, sim: Sim, query: str, variables: dict[str, Any]
) -> None:
    error = await refused(limited, sim, query, variables)
    assert error["extensions"]["cost"] == 1 + 4 * 10 + 100 * (1 + 1 + 3)


async def test_cost_counts_ids_given_only_in_a_variable_default(limited: Gateway, sim: Sim) -> None:
    ids = ", ".join(f'"id{i}"' for i in range(100))
    query = (
        f"query($v: [ID!]! = [{ids}]) {{ nodes(ids: $v) {{ ... on LiveEvent {{ id title status vendorStatus }} }} }}"
    )
    error = await refused(limited, sim, query)
    assert error["extensions"]["cost"] >= 1 + 100 * 4


async def test_introspection_has_a_cost(limited: Gateway, sim: Sim) -> None:
    one = "{ __schema { types { name fields { name } } } }"
    status, body = await limited.post(one)
    assert status == 200 and "errors" not in body
    many = "{ " + " ".join(f"s{i}: __schema {{ types {{ name fields {{ name }} }} }}" for i in range(5)) + " }"
    error = await refused(limited, sim, many)
    assert error["extensions"]["cost"] > LIMITS.max_cost


async def test_introspection_can_be_turned_off_and_the_sdl_is_served(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway(limits=LimitSettings(introspection=False)) as gw:
        for query in ("{ __schema { types { name } } }", '{ __type(name: "Query") { name } }'):
            _, body = await gw.post(query)
            assert "data" not in body or body["data"] is None
            assert body["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
            assert "introspection" in body["errors"][0]["message"]
        # __typename is not introspection of the schema, and clients rely on it.
        assert (await gw.query("{ vendors { __typename } }"))["data"]["vendors"][0]["__typename"] == "VendorHealth"
        async with gw.http.get(f"{gw.url}/schema.graphql") as resp:
            assert resp.status == 200
            assert resp.content_type == "application/graphql"
            assert await resp.text() == (ROOT / "schema.graphql").read_text()
        # GraphiQL reads the schema from there, as the introspection result it would have asked for.
        async with gw.http.get(f"{gw.url}/schema.graphql", headers={"Accept": "application/json"}) as resp:
            assert resp.status == 200
            assert (await resp.json())["data"]["__schema"]["queryType"]["name"] == "Query"
        async with aiohttp.ClientSession() as anonymous, anonymous.get(f"{gw.url}/schema.graphql") as resp:
            assert resp.status == 401
        async with gw.http.get(f"{gw.url}/graphql", headers={"Accept": "text/html"}) as resp:
            assert "/schema.graphql" in await resp.text()
