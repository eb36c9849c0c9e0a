"""One error vocabulary for all vendors; each vendor renders it in its own shape."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web


class ErrorRenderer(Protocol):
    def __call__(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> web.Response: ...


@dataclass
class SimError(Exception):
    """A vendor error answer; `code` is UPPER_SNAKE, and each vendor decides how much of it to show."""

    status: int
    code: str
    message: str
    headers: Mapping[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status} {self.code}: {self.message}"


def code_for_status(status: int) -> str:
    """The code an answer gets when nothing more specific is known, e.g. a route that does not exist."""
    return {
        400: "BAD_REQUEST",
        401: "UNAUTHORIZED",
        404: "NOT_FOUND",
        405: "METHOD_NOT_ALLOWED",
        409: "CONFLICT",
        413: "PAYLOAD_TOO_LARGE",
        429: "RATE_LIMITED",
        500: "INTERNAL_ERROR",
        502: "BAD_GATEWAY",
        503: "SERVICE_UNAVAILABLE",
        504: "GATEWAY_TIMEOUT",
    }.get(status, "SERVER_ERROR" if status >= 500 else "BAD_REQUEST")
