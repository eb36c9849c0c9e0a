"""Helpers shared by the simulator tests: plain HTTP against a running simulator, and contract checks.

It holds no tests itself; the `test_` name only keeps it among the files of the simulator suite.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import aiohttp
from jsonschema import Draft202012Validator, FormatChecker
from multidict import CIMultiDictProxy
from referencing import Registry, Resource

from tests.conftest import SIM_TOKEN, Sim

CONTRACTS = Path(__file__).parent / "contracts"
LOOP = "/loop"
STREAMLOOP = "/streamloop/v1"
LIVEPUSH = "/livepush"
BEARER = {"Authorization": f"Bearer {SIM_TOKEN}"}
#: every stream state Streamloop's contract names
STREAMLOOP_STATES = (
    "draft",
    "invalid",
    "scheduled",
    "preparing",
    "activating",
    "active",
    "failing",
    "failed",
    "stopping",
    "stopped",
)

_RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})$")


@dataclass
class Answer:
    status: int
    headers: CIMultiDictProxy[str]
    text: str

    @property
    def body(self) -> Any:
        return json.loads(self.text)

    @property
    def content_type(self) -> str:
        return self.headers.get("Content-Type", "").split(";")[0]


async def send(
    sim: Sim,
    method: str,
    path: str,
    *,
    json: Any = None,
    data: str | bytes | None = None,
    headers: dict[str, str] | None = None,
    auth: bool = True,
    give_up_after: float | None = None,
) -> Answer:
    """One request to the simulator; `auth` adds the bearer token every vendor accepts, and
    `give_up_after` is the client's patience in seconds."""
    sent_headers = (BEARER if auth else {}) | (headers or {})
    async with sim.http.request(
        method,
        sim.url + path,
        json=json,
        data=data,
        headers=sent_headers,
        timeout=aiohttp.ClientTimeout(total=give_up_after or 10),
    ) as resp:
        return Answer(resp.status, resp.headers, await resp.text())


# A format only speaks about strings; anything else is the `type` keyword's business.
def _is_date_time(value: object) -> bool:
    if not isinstance(value, str):
        return True
    if not _RFC3339.match(value):
        return False
    try:
        datetime.fromisoformat(value.upper().replace("Z", "+00:00"))
    except ValueError:
        return False
    return True


def _is_uuid(value: object) -> bool:
    if not isinstance(value, str):
        return True
    try:
        return str(uuid.UUID(value)) == value.lower()
    except ValueError:
        return False


def _format_checker() -> FormatChecker:
    # Our own checks, so that format assertions never depend on optional jsonschema extras.
    checker = FormatChecker(formats=())
    checker.checks("date-time")(_is_date_time)
    checker.checks("uuid")(_is_uuid)
    return checker


@cache
def _registry() -> Registry:
    resources = []
    for path in sorted(CONTRACTS.glob("*.json")):
        schema = json.loads(path.read_text())
        resources.append((schema["$id"], Resource.from_contents(schema)))
    return Registry().with_resources(resources)


@cache
def contract(name: str) -> Draft202012Validator:
    """The validator for `tests/contracts/<name>.json`."""
    schema = json.loads((CONTRACTS / f"{name}.json").read_text())
    return Draft202012Validator(schema, registry=_registry(), format_checker=_format_checker())


def assert_contract(name: str, body: Any) -> None:
    errors = sorted(contract(name).iter_errors(body), key=lambda e: list(e.path))
    assert not errors, f"{name}: " + "; ".join(f"{list(e.path)}: {e.message}" for e in errors)


def conforms(name: str, body: Any) -> bool:
    return contract(name).is_valid(body)
