"""What client ecosystems need from the gateway: `possibleTypes` at a URL and from the CLI, and the
README's client operations valid against the schema (`make clients` compiles them with GraphQL Code
Generator and tsc)."""

from __future__ import annotations

import json
from pathlib import Path

import aiohttp
import pytest
from graphql import parse, validate

from gateway.cli import main
from gateway.schema import build_schema
from gateway.settings import Role
from tests.conftest import Sim
from tests.gateway_harness import Gateway, auth_header

ROOT = Path(__file__).resolve().parent.parent
CONCRETE = ["LivepushStream", "LoopCall", "LoopSession", "StreamloopStream"]


async def test_possible_types_are_served_to_callers_with_credentials(sim: Sim, gateway: Gateway) -> None:
    async with gateway.http.get(f"{gateway.url}/possible-types.json", headers=auth_header(Role.VIEWER)) as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        assert await resp.json() == {"LiveEvent": CONCRETE, "Node": CONCRETE}
    async with aiohttp.ClientSession() as anonymous, anonymous.get(f"{gateway.url}/possible-types.json") as resp:
        assert resp.status == 401


def test_the_cli_prints_the_same_possible_types(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    main(["possible-types"])
    assert json.loads(capsys.readouterr().out) == {"LiveEvent": CONCRETE, "Node": CONCRETE}
    out = tmp_path / "possibleTypes.json"
    main(["possible-types", "--output", str(out)])
    assert json.loads(out.read_text()) == {"LiveEvent": CONCRETE, "Node": CONCRETE}


def test_the_client_operations_are_valid_against_the_schema() -> None:
    document = parse((ROOT / "docs" / "clients" / "operations.graphql").read_text())
    assert validate(build_schema()._schema, document) == []
