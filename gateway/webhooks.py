"""Signed provider webhooks from Loop Live: a call's session started or ended, its recording is ready.

A delivery is trusted only with a valid `X-Loop-Signature` (`sha256=` and the hex HMAC-SHA256 of the raw
body under the configured secret). It says which call changed; the call is then read from Loop, so the
index holds what Loop says, not what a message claimed. A delivery already applied changes nothing.
"""

from __future__ import annotations

import hashlib
import hmac

import orjson
from aiohttp import web

from gateway.context import Services
from gateway.errors import VendorError
from gateway.model import Source, utcnow

SIGNATURE_HEADER = "X-Loop-Signature"
EVENT_TYPES = frozenset({"call.session_started", "call.session_ended", "call.recording_ready"})


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


async def receive_loop_webhook(request: web.Request, services: Services) -> web.Response:
    secret = services.settings.loop.webhook_secret
    if secret is None:
        return web.json_response({"error": "webhooks are not configured"}, status=404)
    body = await request.read()
    if not hmac.compare_digest(request.headers.get(SIGNATURE_HEADER, ""), sign(secret.get_secret_value(), body)):
        return web.json_response({"error": "missing or invalid signature"}, status=401)
    try:
        payload = orjson.loads(body)
        delivery_id, kind, call_id = str(payload["id"]), str(payload["type"]), str(payload["call_id"])
    except (orjson.JSONDecodeError, KeyError, TypeError):
        return web.json_response({"error": "a delivery needs id, type and call_id"}, status=400)
    if kind not in EVENT_TYPES:
        return web.json_response({"error": f"type must be one of {', '.join(sorted(EVENT_TYPES))}"}, status=400)
    if await services.store.webhooks.seen(delivery_id):
        return web.json_response({"status": "duplicate"})
    asked_at = utcnow()
    try:
        event = await services.adapters[Source.LOOP_CALL].fetch(call_id)
    except VendorError as error:
        # Not recorded as applied: the provider delivers again, and Loop may answer then.
        return web.json_response({"error": error.message, "code": error.code}, status=503)
    await services.store.events.put_many([event], fetched_at=asked_at)
    await services.store.webhooks.record(delivery_id)
    return web.json_response({"status": "applied"})
