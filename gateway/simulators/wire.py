"""What travels on the wire: JSON bodies, RFC 3339 timestamps and opaque cursors."""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from aiohttp import web

JSON = "application/json"

_RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d+)?(?:[Zz]|[+-]\d{2}:\d{2})$",
)


class BodyNotJson(ValueError):
    """The request body could not be read as JSON."""


def json_response(
    body: Any,
    status: int = 200,
    *,
    content_type: str = JSON,
    headers: Mapping[str, str] | None = None,
) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=content_type, headers=headers)


async def read_json(request: web.Request) -> Any:
    """The parsed body; an empty body reads as None."""
    raw = await request.read()
    if not raw.strip():
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BodyNotJson(str(exc)) from exc


def format_ts(moment: datetime | None) -> str | None:
    """UTC, millisecond precision, `Z` suffix: the form all three vendors use."""
    if moment is None:
        return None
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_ts(text: str) -> datetime | None:
    """An RFC 3339 date-time (what JSON Schema's `date-time` format means), or None when it is not one."""
    if not _RFC3339.match(text):
        return None
    try:
        moment = datetime.fromisoformat(text.upper().replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment.astimezone(UTC)


def encode_cursor(position: list[Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(position)).decode().rstrip("=")


def decode_cursor(cursor: str, length: int) -> list[Any] | None:
    """The position a cursor names, or None when it is not one of ours."""
    try:
        position = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError):
        return None
    if not isinstance(position, list) or len(position) != length:
        return None
    if not all(isinstance(part, str) for part in position):
        return None
    return position
