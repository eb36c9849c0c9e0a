"""Signed provider webhooks from Loop Live: a call's session started or ended, its recording is ready.

A delivery is trusted only with a valid `X-Loop-Signature` (`sha256=` and the hex HMAC-SHA256 of the raw
body under the configured secret) and a signed `timestamp` (Unix seconds, the time Loop sent it) within
the tolerance of the gateway's clock. It says which call changed; the call is then read from Loop, so the
index holds what Loop says, not what a message claimed. A delivery already applied changes nothing, and a
signed message is acted on once: sent again, even after it failed, it is refused without asking Loop
(Loop signs each new attempt with its own time).
"""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import orjson
from aiohttp import web

from gateway.context import Services
from gateway.errors import VendorError
from gateway.model import Source, utcnow

SIGNATURE_HEADER = "X-Loop-Signature"
EVENT_TYPES = frozenset({"call.session_started", "call.session_ended", "call.recording_ready"})


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_matches(provided: str, expected: str) -> bool:
    """Compared as bytes: `compare_digest` refuses text with characters outside ASCII, which a header may hold."""
    return hmac.compare_digest(provided.encode("utf-8", "backslashreplace"), expected.encode())


async def receive_loop_webhook(request: web.Request, services: Services) -> web.Response:
    secret = services.settings.loop.webhook_secret
    if secret is None:
        return web.json_response({"error": "webhooks are not configured"}, status=404)
    body = await request.read()
    expected = sign(secret.get_secret_value(), body)
    if not signature_matches(request.headers.get(SIGNATURE_HEADER, ""), expected):
        return web.json_response({"error": "missing or invalid signature"}, status=401)
    try:
        payload = orjson.loads(body)
        delivery_id, kind, call_id = str(payload["id"]), str(payload["type"]), str(payload["call_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return web.json_response({"error": "a delivery needs id, type and call_id"}, status=400)
    if kind not in EVENT_TYPES:
        return web.json_response({"error": f"type must be one of {', '.join(sorted(EVENT_TYPES))}"}, status=400)
    tolerance = services.settings.loop.webhook_tolerance
    sent_at = payload.get("timestamp")
    if isinstance(sent_at, bool) or not isinstance(sent_at, int | float):
        return web.json_response({"error": "a delivery needs its timestamp (Unix seconds)"}, status=400)
    now = utcnow()
    if abs(now.timestamp() - sent_at) > tolerance:
        return web.json_response(
            {"error": f"the timestamp is more than {tolerance:g} s from the gateway's clock"}, status=400
        )
    if await services.store.webhooks.seen(delivery_id):
        return web.json_response({"status": "duplicate"})
    # Kept until the timestamp is too old to pass the check above: a replay cannot outlive its record.
    expires_at = datetime.fromtimestamp(sent_at, UTC) + timedelta(seconds=tolerance)
    if not await services.store.webhooks.first_sight(expected.removeprefix("sha256="), expires_at):
        return web.json_response({"error": "this message was received before"}, status=409)
    asked_at = utcnow()
    try:
        event = await services.adapters[Source.LOOP_CALL].fetch(call_id)
    except VendorError as error:
        # Not recorded as applied: the provider delivers again, and Loop may answer then.
        return web.json_response({"error": error.message, "code": error.code}, status=503)
    await services.store.events.put_many([event], fetched_at=asked_at)
    await services.store.webhooks.record(delivery_id)
    return web.json_response({"status": "applied"})
