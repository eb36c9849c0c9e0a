"""The simulators' OpenAPI documents: valid OpenAPI, one operation for every route the simulators register
(and none they do not), and every answer the simulators give valid against what the document says."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from test_sim_support import send

from gateway.simulators.livepush.app import build_livepush_app
from gateway.simulators.loop.app import build_loop_app
from gateway.simulators.openapi import DOCUMENT_PATH, DOCUMENTS, build_document
from gateway.simulators.streamloop.app import build_streamloop_app
from tests.conftest import Sim

CONTRACTS = Path(__file__).parent / "contracts"
VENDORS = tuple(DOCUMENTS)
SUB_APPS: dict[str, Callable[[], web.Application]] = {
    "loop": build_loop_app,
    "streamloop": build_streamloop_app,
    "livepush": build_livepush_app,
}
METHODS = ("get", "put", "post", "delete", "patch")
DOC_URI = "urn:live-gateway:openapi"


def prefix_of(vendor: str) -> str:
    return DOCUMENTS[vendor][0]


def document(vendor: str) -> dict[str, Any]:
    return build_document(vendor, f"http://127.0.0.1:8081{prefix_of(vendor)}")


def operations(doc: dict[str, Any]) -> set[tuple[str, str]]:
    return {(method.upper(), path) for path, item in doc["paths"].items() for method in item if method in METHODS}


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [r for value in node.values() for r in refs_in(value)]
    if isinstance(node, list):
        return [r for value in node for r in refs_in(value)]
    return []


def _escape(segment: str) -> str:
    """A JSON Pointer reference token."""
    return segment.replace("~", "~0").replace("/", "~1")


def resolve_pointer(doc: dict[str, Any], pointer: str) -> Any:
    assert pointer.startswith("#/"), pointer
    node: Any = doc
    for part in pointer[2:].split("/"):
        node = node[part.replace("~1", "/").replace("~0", "~")]
    return node


# -- The documents themselves ------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
def test_document_is_valid_openapi(vendor: str) -> None:
    validator = pytest.importorskip("openapi_spec_validator")
    validator.validate(document(vendor))


@pytest.mark.parametrize("vendor", VENDORS)
def test_document_is_well_formed_without_a_validator(vendor: str) -> None:
    """What holds whether or not the full validator is installed: every schema is JSON Schema 2020-12 (the
    dialect of OpenAPI 3.1), every reference resolves, operation ids are unique, path parameters declared."""
    doc = document(vendor)
    assert doc["openapi"].startswith("3.1.")
    assert doc["servers"][0]["url"].endswith(prefix_of(vendor))
    for schema in doc["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    for pointer in refs_in(doc):
        assert resolve_pointer(doc, pointer) is not None
    operation_ids = [op["operationId"] for item in doc["paths"].values() for m, op in item.items() if m in METHODS]
    assert len(operation_ids) == len(set(operation_ids))
    for path, item in doc["paths"].items():
        for method, op in item.items():
            declared = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
            in_template = {segment[1:-1] for segment in path.split("/") if segment.startswith("{")}
            assert declared == in_template, f"{method} {path}"
            assert op["responses"], f"{method} {path}"


@pytest.mark.parametrize("vendor", VENDORS)
def test_every_registered_route_is_documented_and_nothing_else(vendor: str) -> None:
    registered = {
        (route.method, route.resource.canonical)
        for route in SUB_APPS[vendor]().router.routes()
        if route.method != "HEAD" and route.resource is not None
    }
    assert registered == operations(document(vendor))


@pytest.mark.parametrize(
    ("vendor", "component", "contract"),
    [
        ("loop", "CreateCallRequest", "loop-create-call.request"),
        ("loop", "CreateSessionRequest", "loop-create-session.request"),
        ("streamloop", "CreateStreamInput", "streamloop-create-stream.request"),
        ("livepush", "CreateStreamRequest", "livepush-create-stream.request"),
    ],
)
def test_request_bodies_match_the_vendor_contracts(vendor: str, component: str, contract: str) -> None:
    documented = document(vendor)["components"]["schemas"][component]
    expected = json.loads((CONTRACTS / f"{contract}.json").read_text())
    assert set(documented["properties"]) == set(expected["properties"])
    assert set(documented.get("required", [])) == set(expected.get("required", []))


# -- Served by the simulators ------------------------------------------------------------------------


@pytest.mark.parametrize("vendor", VENDORS)
async def test_documents_are_served_without_credentials_faults_or_counting(sim: Sim, vendor: str) -> None:
    await sim.control("POST", "faults", {vendor: {"unauthorized": True}})
    answer = await send(sim, "GET", prefix_of(vendor) + DOCUMENT_PATH, auth=False)
    assert answer.status == 200
    assert answer.content_type == "application/json"
    assert answer.body == build_document(vendor, sim.url + prefix_of(vendor))
    assert (await sim.stats())["requests"] == []


@dataclass
class Call:
    vendor: str
    method: str
    template: str
    params: dict[str, str] = field(default_factory=dict)
    body: Any = None
    auth: bool = True

    @property
    def path(self) -> str:
        return prefix_of(self.vendor) + self.template.format(**self.params)


def exercise(seeded: dict[str, list[str]]) -> list[Call]:
    """One request for every documented operation, and some of their errors, in an order that works."""
    call, session, other_session = seeded["loop_call"][0], seeded["loop_session"][0], seeded["loop_session"][1]
    stream, push = seeded["streamloop_stream"][4], seeded["livepush_stream"][0]  # index 4: a draft stream
    missing = "00000000-0000-4000-8000-000000000000"
    session_body = {
        "host_id": "h",
        "brand_id": "b",
        "title": "Office hours",
        "scheduled_at": "2031-01-01T09:00:00Z",
        "max_participants": 5,
    }
    return [
        Call("loop", "POST", "/v1/live/calls", body={"host_user_id": "u", "title": "Check-in"}),
        Call("loop", "POST", "/v1/live/calls", body={"title": ""}),
        Call("loop", "GET", "/v1/live/calls/{id}", {"id": call}),
        Call("loop", "GET", "/v1/live/calls/{id}", {"id": missing}),
        Call("loop", "GET", "/v1/live/calls/{id}", {"id": call}, auth=False),
        Call("loop", "POST", "/v1/live/calls/{id}/end", {"id": call}),
        Call("loop", "POST", "/v1/sessions", body=session_body),
        Call("loop", "GET", "/v1/sessions/{id}", {"id": session}),
        Call("loop", "PATCH", "/v1/sessions/{id}", {"id": session}, body={"title": "Renamed"}),
        Call("loop", "PATCH", "/v1/admin/sessions/{id}", {"id": other_session}, body={"status": "cancelled"}),
        Call("loop", "GET", "/v1/live/sessions"),
        Call("loop", "POST", "/v1/sessions/{id}/register", {"id": session}, body={"role": "participant"}),
        Call("loop", "POST", "/v1/sessions/{id}/register", {"id": session}, body={"role": "participant"}),
        Call("streamloop", "POST", "/streams", body={"name": "Loop radio", "destinationID": "dest-1"}),
        Call("streamloop", "GET", "/streams"),
        Call("streamloop", "GET", "/streams/{id}", {"id": stream}),
        Call("streamloop", "PATCH", "/streams/{id}", {"id": stream}, body={"name": "Renamed"}),
        Call("streamloop", "POST", "/streams/{id}/stop", {"id": stream}),
        Call(
            "streamloop",
            "POST",
            "/streams/{id}/schedule",
            {"id": stream},
            body={"scheduleStartAt": "2031-01-01T09:00:00Z"},
        ),
        Call("streamloop", "POST", "/streams/{id}/start", {"id": stream}),
        Call("streamloop", "POST", "/streams/{id}/stop", {"id": stream}),
        Call("streamloop", "DELETE", "/streams/{id}", {"id": stream}),
        Call("streamloop", "GET", "/streams/{id}", {"id": stream}),
        Call("livepush", "GET", "/streams/mine"),
        Call("livepush", "GET", "/streams/me/destinations"),
        Call("livepush", "GET", "/streams/me/recordings"),
        Call("livepush", "POST", "/streams", body={"category": "simulcast", "name": "Show"}),
        Call("livepush", "POST", "/streams", body={"category": "radio", "name": "Show"}),
        Call("livepush", "GET", "/streams/{streamId}", {"streamId": push}),
        Call(
            "livepush",
            "PUT",
            "/streams/{streamId}/config/scheduler/playlist",
            {"streamId": push},
            body={"videos": ["v1"]},
        ),
        Call("livepush", "DELETE", "/streams/{streamId}", {"streamId": push}),
        Call("livepush", "GET", "/streams/{streamId}", {"streamId": push}),
    ]


async def test_every_answer_is_what_its_document_says(sim: Sim) -> None:
    seeded = await sim.control("POST", "seed", {"seed": 3, "count": 6})
    docs = {vendor: build_document(vendor, sim.url + prefix_of(vendor)) for vendor in VENDORS}
    registry = Registry().with_resources(
        (f"{DOC_URI}:{vendor}", Resource.from_contents(doc, default_specification=DRAFT202012))
        for vendor, doc in docs.items()
    )
    calls = exercise(seeded)
    for call in calls:
        answer = await send(sim, call.method, call.path, json=call.body, auth=call.auth)
        responses = docs[call.vendor]["paths"][call.template][call.method.lower()]["responses"]
        where = f"{call.method} {call.path} -> {answer.status}"
        assert str(answer.status) in responses, f"{where}: status not documented"
        documented = responses[str(answer.status)]
        if "content" not in documented:
            assert answer.text == "", where
            continue
        assert answer.content_type in documented["content"], f"{where}: {answer.content_type}"
        response = f"{_escape(call.template)}/{call.method.lower()}/responses/{answer.status}"
        pointer = f"#/paths/{response}/content/{_escape(answer.content_type)}/schema"
        validator = Draft202012Validator({"$ref": f"{DOC_URI}:{call.vendor}{pointer}"}, registry=registry)
        errors = [f"{list(e.path)}: {e.message}" for e in validator.iter_errors(answer.body)]
        assert not errors, f"{where}: {errors}"
    exercised = {(c.vendor, c.method, c.template) for c in calls}
    for vendor, doc in docs.items():
        for method, path in operations(doc):
            assert (vendor, method, path) in exercised, f"{vendor} {method} {path} was not exercised"
