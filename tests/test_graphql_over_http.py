"""/graphql against the GraphQL-over-HTTP specification: media types, status codes, request validation, GET."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
import orjson
import pytest

from gateway.settings import LimitSettings
from tests.gateway_harness import Gateway

GRAPHQL_RESPONSE = "application/graphql-response+json"
JSON = "application/json"
VALID = "{ vendors { vendor } }"
VENDORS = [{"vendor": "LOOP"}, {"vendor": "STREAMLOOP"}, {"vendor": "LIVEPUSH"}]
MUTATION = (
    'mutation { createLiveEvent(input: {title: "x", targets: {livepush: {category: SIMULCAST}}}) { operationId } }'
)


@dataclass
class Answer:
    status: int
    media_type: str
    charset: str | None
    headers: Any
    body: Any

    @property
    def codes(self) -> list[str]:
        return [error["extensions"]["code"] for error in self.body["errors"]]


async def send(
    gw: Gateway,
    method: str = "POST",
    *,
    body: Any = None,
    data: bytes | str | None = None,
    params: Any = None,
    headers: dict[str, str] | None = None,
    session: aiohttp.ClientSession | None = None,
    skip: tuple[str, ...] = (),
) -> Answer:
    """One request to /graphql; `body` is sent as JSON, `data` as it is."""
    headers = dict(headers or {})
    if body is not None:
        data = orjson.dumps(body)
        headers.setdefault("Content-Type", JSON)
    async with (session or gw.http).request(
        method, f"{gw.url}/graphql", data=data, params=params, headers=headers, skip_auto_headers=skip
    ) as resp:
        raw = await resp.read()
        parsed = orjson.loads(raw) if raw and resp.content_type in (JSON, GRAPHQL_RESPONSE) else raw
        return Answer(resp.status, resp.content_type, resp.charset, resp.headers, parsed)


def accepting(media_type: str) -> dict[str, str]:
    return {"Accept": media_type}


# Media types


async def test_a_query_returns_data_under_both_media_types(gateway: Gateway) -> None:
    for media_type in (GRAPHQL_RESPONSE, JSON):
        answer = await send(gateway, body={"query": VALID}, headers=accepting(media_type))
        assert (answer.status, answer.media_type, answer.charset) == (200, media_type, "utf-8")
        assert answer.body == {"data": {"vendors": VENDORS}}
        assert "Accept" in answer.headers["Vary"]


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, JSON),
        ("*/*", JSON),
        ("application/*", JSON),
        (GRAPHQL_RESPONSE, GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}; charset=utf-8, {JSON}; charset=utf-8", GRAPHQL_RESPONSE),
        (f"{GRAPHQL_RESPONSE}, {JSON};q=0.9", GRAPHQL_RESPONSE),
        (f"{JSON}, {GRAPHQL_RESPONSE};q=0.5", JSON),
        (f"{GRAPHQL_RESPONSE};q=0.8, */*;q=0.9", JSON),
        (f"*/*, {GRAPHQL_RESPONSE}", GRAPHQL_RESPONSE),
        (f"{JSON};q=0, */*", GRAPHQL_RESPONSE),
        ("text/html, */*;q=0.8", JSON),
    ],
)
async def test_the_accept_header_picks_the_media_type(gateway: Gateway, accept: str | None, expected: str) -> None:
    if accept is None:
        answer = await send(gateway, body={"query": VALID}, skip=("Accept",))
    else:
        answer = await send(gateway, body={"query": VALID}, headers=accepting(accept))
    assert (answer.status, answer.media_type) == (200, expected)
    assert answer.body["data"]["vendors"] == VENDORS


@pytest.mark.parametrize(
    "accept", ["text/html", "text/plain, application/xml", f"{JSON}; charset=iso-8859-1", f"{JSON};q=0"]
)
async def test_an_accept_header_admitting_neither_media_type_is_406(gateway: Gateway, accept: str) -> None:
    answer = await send(gateway, body={"query": VALID}, headers=accepting(accept))
    assert answer.status == 406
    assert answer.codes == ["NOT_ACCEPTABLE"]
    assert GRAPHQL_RESPONSE in answer.body["errors"][0]["message"]


# Status codes: graphql-response+json says what happened, application/json is 200 for any well-formed request

REQUEST_ERRORS = [
    pytest.param({"query": "{ vendors { "}, "GRAPHQL_PARSE_FAILED", id="parse"),
    pytest.param({"query": ""}, "GRAPHQL_PARSE_FAILED", id="empty document"),
    pytest.param({"query": "{ noSuchField }"}, "GRAPHQL_VALIDATION_FAILED", id="validation"),
    pytest.param(
        {"query": "query Q($id: ID!) { liveEvent(id: $id) { id } }", "variables": {"id": None}},
        "BAD_USER_INPUT",
        id="variable coercion",
    ),
    pytest.param({"query": "query A { __typename }", "operationName": "B"}, "OPERATION_RESOLUTION_FAILURE", id="no op"),
]


@pytest.mark.parametrize(("body", "code"), REQUEST_ERRORS)
async def test_a_request_error_is_400_without_data_under_graphql_response_json(
    gateway: Gateway, body: dict[str, Any], code: str
) -> None:
    answer = await send(gateway, body=body, headers=accepting(GRAPHQL_RESPONSE))
    assert (answer.status, answer.media_type) == (400, GRAPHQL_RESPONSE)
    assert "data" not in answer.body
    assert answer.codes == [code]


@pytest.mark.parametrize(("body", "code"), REQUEST_ERRORS)
async def test_a_request_error_is_200_without_data_under_json(
    gateway: Gateway, body: dict[str, Any], code: str
) -> None:
    answer = await send(gateway, body=body, headers=accepting(JSON))
    assert (answer.status, answer.media_type) == (200, JSON)
    assert "data" not in answer.body
    assert answer.codes == [code]


async def test_field_errors_are_200_with_data_under_both_media_types(gateway: Gateway) -> None:
    partial = '{ vendors { vendor } liveEvent(id: "nonsense") { id } }'
    nulled = "{ liveEvents(first: 1, last: 1) { totalCount } }"
    for media_type in (GRAPHQL_RESPONSE, JSON):
        answer = await send(gateway, body={"query": partial}, headers=accepting(media_type))
        assert answer.status == 200
        assert answer.body["data"] == {"vendors": VENDORS, "liveEvent": None}
        assert answer.codes == ["BAD_USER_INPUT"]
        # A field error that nulls the whole result is still an executed operation: data is there, as null.
        answer = await send(gateway, body={"query": nulled}, headers=accepting(media_type))
        assert answer.status == 200
        assert answer.body["data"] is None
        assert answer.body["errors"][0]["path"] == ["liveEvents"]


async def test_operation_name_and_null_parameters_are_accepted(gateway: Gateway) -> None:
    document = "query A { vendors { vendor } } query B { __typename }"
    for media_type in (GRAPHQL_RESPONSE, JSON):
        answer = await send(
            gateway,
            body={"query": document, "operationName": "A", "variables": None, "extensions": None},
            headers=accepting(media_type),
        )
        assert answer.status == 200
        assert answer.body == {"data": {"vendors": VENDORS}}
        answer = await send(gateway, body={"query": VALID, "operationName": None, "extensions": {"some": "value"}})
        assert answer.body == {"data": {"vendors": VENDORS}}


# POST bodies


@pytest.mark.parametrize(
    "content_type",
    [None, "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/graphql"],
)
async def test_a_post_body_that_is_not_json_is_415(gateway: Gateway, content_type: str | None) -> None:
    headers = accepting(GRAPHQL_RESPONSE)
    skip: tuple[str, ...] = ()
    if content_type is None:
        skip = ("Content-Type",)
    else:
        headers["Content-Type"] = content_type
    answer = await send(gateway, data=orjson.dumps({"query": VALID}), headers=headers, skip=skip)
    assert (answer.status, answer.media_type) == (415, GRAPHQL_RESPONSE)
    assert answer.codes == ["UNSUPPORTED_MEDIA_TYPE"]


async def test_the_body_is_utf8_with_or_without_a_charset(gateway: Gateway) -> None:
    query = '{ __type(name: "Run🏃Swim🏊") { name } }'
    for content_type in (JSON, "application/json; charset=utf-8", 'Application/JSON; Charset="UTF-8"'):
        answer = await send(gateway, data=orjson.dumps({"query": query}), headers={"Content-Type": content_type})
        assert answer.status == 200, content_type
        assert answer.body == {"data": {"__type": None}}
    answer = await send(
        gateway, data=b'{"query": "{ __typename }"}', headers={"Content-Type": f"{JSON}; charset=latin-1"}
    )
    assert answer.status == 415
    assert "UTF-8" in answer.body["errors"][0]["message"]
    answer = await send(gateway, data=b'{"query": "{ \xff }"}', headers={"Content-Type": JSON})
    assert answer.status == 400
    assert answer.codes == ["BAD_REQUEST"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        pytest.param(b"", "empty", id="no body"),
        pytest.param(b'{ "not a JSON', "not valid JSON", id="not json"),
        pytest.param(b'[{"query": "{ __typename }"}]', "batched", id="batch"),
        pytest.param(b'"{ __typename }"', "JSON object", id="string"),
        pytest.param(b'{"qeury": "{ __typename }"}', "`query` is required", id="no query"),
        pytest.param(b'{"query": null}', "`query` is required", id="null query"),
        pytest.param(b'{"query": {"obj": "ect"}}', "`query` must be a string", id="object query"),
        pytest.param(b'{"query": 0}', "`query` must be a string", id="number query"),
        pytest.param(b'{"query": ["array"]}', "`query` must be a string", id="array query"),
        pytest.param(b'{"query": "{ __typename }", "operationName": false}', "`operationName`", id="operationName"),
        pytest.param(b'{"query": "{ __typename }", "variables": "{}"}', "`variables`", id="string variables"),
        pytest.param(b'{"query": "{ __typename }", "variables": [7]}', "`variables`", id="array variables"),
        pytest.param(b'{"query": "{ __typename }", "extensions": 0}', "`extensions`", id="number extensions"),
    ],
)
async def test_a_malformed_request_is_400_under_both_media_types(gateway: Gateway, data: bytes, message: str) -> None:
    for media_type in (GRAPHQL_RESPONSE, JSON):
        answer = await send(gateway, data=data, headers={"Content-Type": JSON, **accepting(media_type)})
        assert (answer.status, answer.media_type) == (400, media_type)
        assert answer.codes == ["BAD_REQUEST"]
        assert message in answer.body["errors"][0]["message"]


async def test_a_body_over_the_limit_is_413(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway(limits=LimitSettings(max_body_bytes=1024)) as gw:
        padding = " " * 2048
        answer = await send(gw, body={"query": f"{{ __typename {padding}}}"}, headers=accepting(GRAPHQL_RESPONSE))
        assert (answer.status, answer.media_type) == (413, GRAPHQL_RESPONSE)
        assert answer.codes == ["PAYLOAD_TOO_LARGE"]


# GET


async def test_a_query_over_get_with_variables(gateway: Gateway) -> None:
    params = {
        "query": "query Q($first: Int) { liveEvents(first: $first) { totalCount } vendors { vendor } }",
        "variables": '{"first": 1}',
        "operationName": "",
        "extensions": "",
    }
    for media_type in (GRAPHQL_RESPONSE, JSON):
        answer = await send(gateway, "GET", params=params, headers=accepting(media_type))
        assert (answer.status, answer.media_type) == (200, media_type)
        assert answer.body["data"]["vendors"] == VENDORS
        assert "errors" not in answer.body


@pytest.mark.parametrize(
    ("params", "message"),
    [
        pytest.param({}, "`query` is required", id="no query"),
        pytest.param({"query": VALID, "variables": "{not json"}, "`variables` is not valid JSON", id="not json"),
        pytest.param({"query": VALID, "variables": "[1]"}, "`variables` must be an object", id="array"),
        pytest.param({"query": VALID, "extensions": '"x"'}, "`extensions` must be an object", id="string"),
        pytest.param([("query", VALID), ("query", "{ __typename }")], "more than once", id="repeated"),
    ],
)
async def test_a_malformed_get_is_400(gateway: Gateway, params: Any, message: str) -> None:
    answer = await send(gateway, "GET", params=params, headers=accepting(JSON))
    assert answer.status == 400
    assert answer.codes == ["BAD_REQUEST"]
    assert message in answer.body["errors"][0]["message"]


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({"query": MUTATION}, id="mutation"),
        pytest.param(
            {"query": f"query Q {{ __typename }} {MUTATION.replace('mutation', 'mutation M')}", "operationName": "M"},
            id="named",
        ),
    ],
)
async def test_a_mutation_over_get_is_405_and_runs_nothing(gateway: Gateway, params: dict[str, str]) -> None:
    for media_type in (GRAPHQL_RESPONSE, JSON):
        answer = await send(gateway, "GET", params=params, headers=accepting(media_type))
        assert (answer.status, answer.media_type) == (405, media_type)
        assert answer.headers["Allow"] == "POST"
        assert answer.codes == ["METHOD_NOT_ALLOWED"]
    assert await gateway.services.store.journal.collection.count_documents({}) == 0


async def test_subscriptions_are_not_served_over_http(gateway: Gateway) -> None:
    subscription = "subscription { liveEventUpdated { id } }"
    for method in ("GET", "POST"):
        request: dict[str, Any] = (
            {"params": {"query": subscription}} if method == "GET" else {"body": {"query": subscription}}
        )
        answer = await send(gateway, method, headers=accepting(GRAPHQL_RESPONSE), **request)
        assert answer.status == 400
        assert "data" not in answer.body
        assert answer.codes == ["BAD_REQUEST"]
        assert "websocket" in answer.body["errors"][0]["message"]
        answer = await send(gateway, method, headers=accepting(JSON), **request)
        assert answer.status == 200
        assert answer.codes == ["BAD_REQUEST"]
    assert gateway.services.hub.subscriber_count == 0


# Methods, credentials and the browser page


@pytest.mark.parametrize("method", ["PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_other_methods_are_405(gateway: Gateway, method: str) -> None:
    answer = await send(gateway, method, body={"query": VALID}, headers=accepting(GRAPHQL_RESPONSE))
    assert (answer.status, answer.media_type) == (405, GRAPHQL_RESPONSE)
    assert answer.headers["Allow"] == "GET, POST"
    assert answer.codes == ["METHOD_NOT_ALLOWED"]


async def test_a_401_keeps_the_negotiated_media_type(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as anonymous:
        for media_type in (GRAPHQL_RESPONSE, JSON):
            answer = await send(gateway, body={"query": VALID}, headers=accepting(media_type), session=anonymous)
            assert (answer.status, answer.media_type) == (401, media_type)
            assert answer.codes == ["UNAUTHENTICATED"]


async def test_graphiql_is_served_to_a_browser_without_credentials(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as anonymous:
        browser = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
        answer = await send(gateway, "GET", headers=browser, session=anonymous)
        assert (answer.status, answer.media_type) == (200, "text/html")
        assert b"graphiql" in answer.body.lower()
        # The page holds no data; a query from it needs credentials.
        answer = await send(gateway, "GET", params={"query": VALID}, headers=browser, session=anonymous)
        assert answer.status == 401


async def test_without_graphiql_a_browser_gets_a_graphql_error(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway(graphiql=False) as gw:
        answer = await send(gw, "GET", headers={"Accept": "text/html,*/*;q=0.8"})
        assert (answer.status, answer.media_type) == (400, JSON)
        assert answer.codes == ["BAD_REQUEST"]
