"""Request-body checks that mirror the vendors' JSON schemas, with a message naming the offending field.

Only what the vendors' schemas say is checked (types, required, minLength, exclusiveMinimum, enum,
date-time); unknown fields pass, as they do under a schema without `additionalProperties: false`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from .wire import parse_ts

Kind = Literal["string", "integer", "boolean", "object", "string_array", "date_time"]


class InvalidBody(ValueError):
    """A request body that its schema rejects; the message names the field."""

    def __init__(self, field: str | None, problem: str) -> None:
        self.field = field
        self.problem = problem
        super().__init__(f"{field}: {problem}" if field else problem)


@dataclass(frozen=True)
class FieldSpec:
    name: str
    kind: Kind
    required: bool = False
    nullable: bool = False
    min_length: int | None = None
    exclusive_minimum: int | None = None
    enum: tuple[str, ...] | None = None


def check_object(body: Any, fields: Sequence[FieldSpec]) -> dict[str, Any]:
    """The known fields that are present, checked; date-times come back as datetimes."""
    if not isinstance(body, dict):
        raise InvalidBody(None, "the body must be a JSON object")
    checked: dict[str, Any] = {}
    for spec in fields:
        if spec.name not in body:
            if spec.required:
                raise InvalidBody(spec.name, "is required")
            continue
        checked[spec.name] = check_value(spec, body[spec.name])
    return checked


def check_value(spec: FieldSpec, value: Any) -> Any:
    if value is None:
        if spec.nullable:
            return None
        raise InvalidBody(spec.name, f"must be {_describe(spec.kind)}, not null")
    if spec.kind == "string" or spec.kind == "date_time":
        if not isinstance(value, str):
            raise InvalidBody(spec.name, f"must be {_describe(spec.kind)}")
        if spec.min_length is not None and len(value) < spec.min_length:
            raise InvalidBody(spec.name, f"must be at least {spec.min_length} character(s) long")
        if spec.enum is not None and value not in spec.enum:
            raise InvalidBody(spec.name, f"must be one of {', '.join(spec.enum)}")
        if spec.kind == "date_time":
            return _date_time(spec.name, value)
        return value
    if spec.kind == "integer":
        number = _integer(spec.name, value)
        if spec.exclusive_minimum is not None and number <= spec.exclusive_minimum:
            raise InvalidBody(spec.name, f"must be greater than {spec.exclusive_minimum}")
        return number
    if spec.kind == "boolean":
        if not isinstance(value, bool):
            raise InvalidBody(spec.name, "must be a boolean")
        return value
    if spec.kind == "object":
        if not isinstance(value, dict):
            raise InvalidBody(spec.name, "must be an object")
        return value
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidBody(spec.name, "must be an array of strings")
    return list(value)


def _integer(name: str, value: Any) -> int:
    # JSON Schema counts 3.0 as an integer and true as no number at all.
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidBody(name, "must be an integer")
    if isinstance(value, float):
        if not value.is_integer():
            raise InvalidBody(name, "must be an integer")
        return int(value)
    return value


def _date_time(name: str, value: str) -> datetime:
    moment = parse_ts(value)
    if moment is None:
        raise InvalidBody(name, "must be an RFC 3339 date-time such as 2030-01-01T09:00:00Z")
    return moment


def _describe(kind: Kind) -> str:
    return {
        "string": "a string",
        "integer": "an integer",
        "boolean": "a boolean",
        "object": "an object",
        "string_array": "an array of strings",
        "date_time": "a date-time string",
    }[kind]


def query_limit(query: Mapping[str, str], *, default: int, maximum: int) -> int:
    """A `limit` query parameter: 1..maximum."""
    raw = query.get("limit")
    if raw is None:
        return default
    try:
        limit = int(raw)
    except ValueError:
        raise InvalidBody("limit", f"must be an integer from 1 to {maximum}") from None
    if not 1 <= limit <= maximum:
        raise InvalidBody("limit", f"must be an integer from 1 to {maximum}")
    return limit
