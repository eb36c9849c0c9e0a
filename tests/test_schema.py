"""The checked-in SDL is the code's schema, and the schema carries the contract's names."""

from __future__ import annotations

from pathlib import Path

from gateway.cli import main
from gateway.schema import build_schema

ROOT = Path(__file__).resolve().parent.parent


def test_schema_graphql_matches_the_code() -> None:
    checked_in = (ROOT / "schema.graphql").read_text()
    assert checked_in == build_schema().as_str() + "\n", "run `make schema` and commit schema.graphql"


def test_export_schema_writes_the_sdl(tmp_path: Path) -> None:
    out = tmp_path / "schema.graphql"
    main(["export-schema", "--output", str(out)])
    assert out.read_text() == (ROOT / "schema.graphql").read_text()


def test_schema_has_the_design_names() -> None:
    sdl = build_schema().as_str()
    for line in (
        "interface LiveEvent implements Node",
        "type LoopCall implements LiveEvent & Node",
        "type LoopSession implements LiveEvent & Node",
        "type StreamloopStream implements LiveEvent & Node",
        "type LivepushStream implements LiveEvent & Node",
        "enum LiveEventStatus",
        "enum EventSource",
        "enum Vendor",
        "scalar DateTime",
        "scalar JSON",
    ):
        assert line in sdl
