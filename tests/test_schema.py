"""The checked-in SDL is the code's schema, and the schema carries the contract's names."""

from __future__ import annotations

from pathlib import Path

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    build_ast_schema,
    parse,
)

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


BUILT_IN = {"String", "Int", "Float", "Boolean", "ID"}


def undescribed(schema: GraphQLSchema) -> list[str]:
    """Every type, field, argument and enum value of `schema` without a description, by coordinate."""
    missing: list[str] = []
    for name, named in schema.type_map.items():
        if name.startswith("__") or name in BUILT_IN:
            continue
        if not named.description:
            missing.append(name)
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType | GraphQLInputObjectType):
            for field_name, field in named.fields.items():
                if not field.description:
                    missing.append(f"{name}.{field_name}")
                for arg_name, arg in getattr(field, "args", {}).items():
                    if not arg.description:
                        missing.append(f"{name}.{field_name}({arg_name}:)")
        if isinstance(named, GraphQLEnumType):
            missing += [f"{name}.{value}" for value, definition in named.values.items() if not definition.description]
    return missing


def test_every_type_field_argument_and_enum_value_is_described() -> None:
    assert undescribed(build_schema()._schema) == []


def test_the_walk_finds_what_lacks_a_description() -> None:
    sdl = """
    "d" type Query { "d" a(x: Int): Int  b: E }
    enum E { "d" ONE TWO }
    "d" input I { c: Int }
    """
    assert undescribed(build_ast_schema(parse(sdl))) == ["Query.a(x:)", "Query.b", "E", "E.TWO", "I.c"]


def test_page_sizes_and_is_live_are_explained() -> None:
    sdl = build_schema().as_str()
    assert "at most 100" in sdl and "page holds 20" in sdl
    assert "(status STARTING)" in sdl  # isLive is true while a Streamloop stream starts
