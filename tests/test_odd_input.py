"""Input that parses but names an instant no stored date can hold, or a cursor that is not one of ours,
is refused as BAD_USER_INPUT naming the argument, over every route that takes it."""

from __future__ import annotations

import base64
import json

import pytest

from gateway.store.cursors import KeysetPosition
from tests.conftest import Sim
from tests.gateway_harness import Gateway
from tests.test_mutations import create, create_input, creates_at_vendors
from tests.test_read_path import LIST_QUERY

STATS_QUERY = "query($filter: LiveEventFilter) { liveEventStats(filter: $filter) { total } }"

#: instants whose offsets carry them out of the years a date can hold once made UTC
OUT_OF_RANGE = ["0001-01-01T00:00:00+01:00", "9999-12-31T23:59:59-14:00"]


def cursor_of(payload: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode().rstrip("=")


def nested_cursor(depth: int) -> str:
    return base64.urlsafe_b64encode(("[" * depth + "]" * depth).encode()).decode().rstrip("=")


def assert_bad_input(body: dict[str, object], field: str) -> None:
    errors = body["errors"]
    assert isinstance(errors, list) and len(errors) == 1, body
    extensions = errors[0]["extensions"]
    assert extensions["code"] == "BAD_USER_INPUT", body
    assert extensions["field"] == field, body


@pytest.mark.parametrize("instant", OUT_OF_RANGE)
@pytest.mark.parametrize("argument", ["after", "before"])
async def test_a_cursor_with_an_out_of_range_date_is_bad_input(gateway: Gateway, instant: str, argument: str) -> None:
    size = "first" if argument == "after" else "last"
    body = await gateway.query(LIST_QUERY, {size: 5, argument: cursor_of([instant, "LOOP_CALL:x"])})
    assert_bad_input(body, argument)


@pytest.mark.parametrize("depth", [1_400, 100_000])
async def test_a_cursor_of_deeply_nested_json_is_bad_input(gateway: Gateway, depth: int) -> None:
    body = await gateway.query(LIST_QUERY, {"first": 5, "after": nested_cursor(depth)})
    assert_bad_input(body, "after")


@pytest.mark.parametrize("instant", OUT_OF_RANGE)
@pytest.mark.parametrize("bound", ["scheduledFrom", "scheduledTo"])
@pytest.mark.parametrize("query", [LIST_QUERY, STATS_QUERY], ids=["liveEvents", "liveEventStats"])
async def test_a_filter_with_an_out_of_range_date_is_bad_input(
    gateway: Gateway, instant: str, bound: str, query: str
) -> None:
    body = await gateway.query(query, {"filter": {bound: instant}})
    assert_bad_input(body, f"filter.{bound}")


@pytest.mark.parametrize("instant", OUT_OF_RANGE)
def test_decoding_a_cursor_with_an_out_of_range_date_is_a_value_error(instant: str) -> None:
    with pytest.raises(ValueError, match="malformed cursor"):
        KeysetPosition.decode(cursor_of([instant, "LOOP_CALL:x"]))


@pytest.mark.parametrize("instant", OUT_OF_RANGE)
async def test_a_create_with_an_out_of_range_start_is_bad_input_and_calls_no_vendor(
    sim: Sim, gateway: Gateway, instant: str
) -> None:
    await sim.control("POST", "reset", {"stats_only": True})
    body = await create(gateway, {**create_input(), "scheduledStart": instant})
    assert_bad_input(body, "scheduledStart")
    assert await creates_at_vendors(sim) == {}


@pytest.mark.parametrize("method", ["GET", "POST"])
async def test_variables_nested_deeper_than_json_encoders_go_are_bad_input(gateway: Gateway, method: str) -> None:
    # 400 levels parse as JSON, but are deeper than orjson writes: nothing keyed by the variables may fail on them.
    variables = json.dumps({"ids": json.loads("[" * 400 + '"x"' + "]" * 400)})
    query = "query($ids: [ID!]!) { nodes(ids: $ids) { id } }"
    if method == "GET":
        request = gateway.http.get(f"{gateway.url}/graphql", params={"query": query, "variables": variables})
    else:
        body = json.dumps({"query": query, "variables": json.loads(variables)})
        request = gateway.http.post(f"{gateway.url}/graphql", data=body, headers={"Content-Type": "application/json"})
    async with request as resp:
        text = await resp.text()
        assert resp.status == 200, text[:300]
        answer = json.loads(text)
    assert [error["extensions"]["code"] for error in answer["errors"]] == ["BAD_USER_INPUT"]
