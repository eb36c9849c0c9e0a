"""Request contracts: a vendor's request schema, mirrored as a strict pydantic model, checked before anything
is sent, with each violation named by the GraphQL input the bad value came from."""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Annotated, Any, TypeVar

import pydantic
from pydantic_core import ErrorDetails

from gateway.errors import BadUserInput
from gateway.vendors.base import UtcDateTime

R = TypeVar("R", bound=pydantic.BaseModel)

#: A timestamp in a request model: a datetime from the caller, or the ISO string of a journaled body;
#: always UTC, so that it is written with a `Z`.
RequestDateTime = Annotated[UtcDateTime, pydantic.Strict(False)]


class RequestModel(pydantic.BaseModel):
    """A vendor's request body as its JSON schema states it."""

    # Strict: a value of the wrong type is the caller's to hear about, not one to coerce into another.
    model_config = pydantic.ConfigDict(strict=True, extra="forbid", loc_by_alias=False)


_TYPE_WORDS = {
    "int_type": "an integer",
    "string_type": "a string",
    "bool_type": "true or false",
    "list_type": "a list",
    "dict_type": "an object",
    "datetime_type": "a date-time",
    "datetime_parsing": "a date-time",
    "datetime_from_date_parsing": "a date-time",
}


def _describe(error: ErrorDetails) -> tuple[str, str]:
    """What is wrong with a value, in words for the caller, and a reason code for a program."""
    kind = error["type"]
    ctx: dict[str, Any] = error.get("ctx") or {}
    if kind == "missing":
        return "is required", "REQUIRED"
    if kind == "string_too_short":
        least = ctx.get("min_length", 1)
        return ("must not be empty", "EMPTY") if least == 1 else (f"must have {least} characters or more", "TOO_SHORT")
    if kind == "greater_than":
        return f"must be greater than {ctx['gt']}", "OUT_OF_RANGE"
    if kind == "greater_than_equal":
        return f"must be {ctx['ge']} or more", "OUT_OF_RANGE"
    if kind == "literal_error":
        return f"must be {ctx['expected']}", "NOT_ALLOWED"
    if kind == "extra_forbidden":
        return "is not accepted", "UNKNOWN_FIELD"
    if kind in _TYPE_WORDS:
        return f"must be {_TYPE_WORDS[kind]}", "WRONG_TYPE"
    # A model's own rule (PydanticCustomError) words its message for the caller already.
    return error["msg"], kind.upper()


def camel_case(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.capitalize() for part in rest)


def given(**values: Any) -> dict[str, Any]:
    """The values that were given: an absent one is left for the model to default or to call missing."""
    return {name: value for name, value in values.items() if value is not None}


@dataclass(frozen=True, slots=True)
class RequestContract:
    """One target's request models as the GraphQL input sees them, so that a violation names the input
    the bad value came from: a common field (`title`) or one of the target's options
    (`targets.loopSession.maxParticipants`)."""

    vendor_name: str
    target_path: str
    #: request model field -> GraphQL path, for the fields filled from the event's common input
    common_paths: Mapping[str, str]

    def path(self, name: str) -> str:
        return self.common_paths.get(name) or f"{self.target_path}.{camel_case(name)}"

    def violation(self, path: str, what: str, reason: str) -> BadUserInput:
        return BadUserInput(f"{path}: {what} ({self.vendor_name})", field=path, reason=reason)

    def options(self, options: Mapping[str, Any], known: Collection[str]) -> dict[str, Any]:
        """The target's options that are set; one the vendor has no field for is refused, not dropped."""
        for name in options:
            if name not in known:
                raise self.violation(self.path(name), "is not an option of this target", "UNKNOWN_FIELD")
        return given(**options)

    def check(self, model: type[R], data: Mapping[str, Any], *, renamed: Mapping[str, str] | None = None) -> R:
        """`data` as `model`; `renamed` gives other paths to fields that came from elsewhere this time."""
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            error = exc.errors()[0]
            name = str(error["loc"][0]) if error["loc"] else ""
            path = (renamed or {}).get(name) or self.path(name)
            raise self.violation(path, *_describe(error)) from exc
