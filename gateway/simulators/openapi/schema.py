"""Pieces every vendor's OpenAPI document is made of.

The documents are OpenAPI 3.1, whose schema objects are JSON Schema 2020-12, the dialect of the vendors' own
reference pages.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..validation import FieldSpec

OPENAPI_VERSION = "3.1.0"
JSON = "application/json"

Schema = dict[str, Any]


def ref(component: str) -> Schema:
    return {"$ref": f"#/components/schemas/{component}"}


def nullable(schema: Schema) -> Schema:
    """`schema`, or null.

    Written as a union with `{"type": "null"}` rather than as a `type` list: the two mean the same in
    JSON Schema, and OpenAPI tools (Mesh's OpenAPI loader among them) read a nullable field from the union.
    """
    return {"anyOf": [schema, {"type": "null"}]}


def string(*, fmt: str | None = None, enum: Sequence[str] | None = None, pattern: str | None = None) -> Schema:
    out: Schema = {"type": "string"}
    if fmt is not None:
        out["format"] = fmt
    if enum is not None:
        out["enum"] = list(enum)
    if pattern is not None:
        out["pattern"] = pattern
    return out


DATE_TIME = string(fmt="date-time")


def obj(properties: Mapping[str, Schema], required: Iterable[str] = (), **extra: Any) -> Schema:
    out: Schema = {"type": "object", "properties": dict(properties)}
    wanted = list(required)
    if wanted:
        out["required"] = wanted
    out.update(extra)
    return out


def array(items: Schema) -> Schema:
    return {"type": "array", "items": items}


def field_schema(spec: FieldSpec) -> Schema:
    """The JSON Schema of one field the simulator checks, so the document says what the handler enforces."""
    out: Schema
    if spec.kind == "string":
        out = string(enum=spec.enum)
        if spec.min_length is not None:
            out["minLength"] = spec.min_length
    elif spec.kind == "date_time":
        out = string(fmt="date-time")
    elif spec.kind == "integer":
        out = {"type": "integer"}
        if spec.exclusive_minimum is not None:
            out["exclusiveMinimum"] = spec.exclusive_minimum
    elif spec.kind == "boolean":
        out = {"type": "boolean"}
    elif spec.kind == "object":
        out = {"type": "object", "additionalProperties": {}}
    else:
        out = array({"type": "string"})
    return nullable(out) if spec.nullable else out


def request_schema(fields: Sequence[FieldSpec], defaults: Mapping[str, Any] | None = None) -> Schema:
    """A request body's schema from the field checks its handler runs."""
    properties: dict[str, Schema] = {}
    for spec in fields:
        properties[spec.name] = field_schema(spec)
        if defaults and spec.name in defaults:
            properties[spec.name]["default"] = defaults[spec.name]
    return obj(properties, [spec.name for spec in fields if spec.required])


def json_body(schema: Schema, *, required: bool = True, content_type: str = JSON) -> dict[str, Any]:
    return {"required": required, "content": {content_type: {"schema": schema}}}


def answer(
    description: str,
    schema: Schema | None = None,
    *,
    content_type: str = JSON,
    headers: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    out: dict[str, Any] = {"description": description}
    if schema is not None:
        out["content"] = {content_type: {"schema": schema}}
    if headers:
        out["headers"] = dict(headers)
    return out


def path_parameter(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "description": description, "schema": string()}


def query_parameter(name: str, schema: Schema, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def limit_parameter(default: int, maximum: int) -> dict[str, Any]:
    schema: Schema = {"type": "integer", "minimum": 1, "maximum": maximum, "default": default}
    return query_parameter("limit", schema, f"page size, 1 to {maximum}")


def document(
    *,
    title: str,
    description: str,
    server_url: str,
    vendor_url: str,
    paths: Mapping[str, Any],
    schemas: Mapping[str, Schema],
    security_schemes: Mapping[str, Any],
    security: Sequence[Mapping[str, list[str]]],
    extra_components: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    components: dict[str, Any] = {"schemas": dict(schemas), "securitySchemes": dict(security_schemes)}
    if extra_components:
        components.update(extra_components)
    return {
        "openapi": OPENAPI_VERSION,
        "info": {"title": title, "version": "1.0.0", "description": description},
        # The simulator first (where this document was fetched from), then the vendor it stands in for.
        "servers": [
            {"url": server_url, "description": "this simulator"},
            {"url": vendor_url, "description": "the vendor"},
        ],
        "security": [dict(requirement) for requirement in security],
        "paths": dict(paths),
        "components": components,
    }
