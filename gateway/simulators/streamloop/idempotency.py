"""Streamloop's `Idempotency-Key`: a repeat within 24 h replays the first answer instead of running again.

The check and the claim on a key happen with no await between them, so two concurrent requests with one
key can never both run: the second waits for the first and then replays its answer.
"""

from __future__ import annotations

import asyncio
import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta

import orjson

RETENTION = timedelta(hours=24)


@dataclass(frozen=True)
class StoredAnswer:
    fingerprint: str
    status: int
    body: bytes
    content_type: str
    stored_at: datetime


@dataclass
class InFlight:
    fingerprint: str
    done: asyncio.Future[None]


@dataclass(frozen=True)
class Replay:
    answer: StoredAnswer


@dataclass(frozen=True)
class Reused:
    """The key was used before for a different request."""


@dataclass(frozen=True)
class Wait:
    done: asyncio.Future[None]


@dataclass(frozen=True)
class Claimed:
    """The key is now ours: run the request, then `finish` it."""


Decision = Replay | Reused | Wait | Claimed


def fingerprint(method: str, path: str, body: bytes) -> str:
    """What makes two requests "the same": method, path and body (key order does not matter)."""
    try:
        canonical = orjson.dumps(orjson.loads(body), option=orjson.OPT_SORT_KEYS) if body.strip() else b""
    except orjson.JSONDecodeError:
        canonical = body
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + canonical).hexdigest()


class IdempotencyStore:
    def __init__(self) -> None:
        self._answers: dict[tuple[str, str], StoredAnswer] = {}
        self._in_flight: dict[tuple[str, str], InFlight] = {}

    def claim(self, scope: tuple[str, str], print_: str, now: datetime) -> Decision:
        """Decide what to do with a request carrying a key; synchronous on purpose (see module doc)."""
        stored = self._answers.get(scope)
        if stored is not None and now - stored.stored_at >= RETENTION:
            del self._answers[scope]
            stored = None
        if stored is not None:
            return Replay(stored) if stored.fingerprint == print_ else Reused()
        running = self._in_flight.get(scope)
        if running is not None:
            return Wait(running.done) if running.fingerprint == print_ else Reused()
        self._in_flight[scope] = InFlight(print_, asyncio.get_running_loop().create_future())
        return Claimed()

    def finish(self, scope: tuple[str, str], answer: StoredAnswer | None) -> None:
        """Release a claim, keeping the answer unless there is none to keep (a 5xx, or a failure)."""
        running = self._in_flight.pop(scope, None)
        if answer is not None:
            self._answers[scope] = answer
        if running is not None and not running.done.done():
            running.done.set_result(None)
