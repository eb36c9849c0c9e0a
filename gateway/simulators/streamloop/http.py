"""Streamloop's conventions on the wire: problem+json errors, two ways to authenticate, the rate limit
and idempotent writes."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from http import HTTPStatus

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from ..middleware import VendorProfile
from ..state import sim_state
from ..wire import json_response
from .idempotency import Claimed, Replay, Reused, StoredAnswer, Wait, fingerprint

PREFIX = "/streamloop/v1"
PROBLEM_JSON = "application/problem+json"
PROBLEM_TYPE_BASE = "https://api.streamloop.app/problems/"
# Who is calling, as far as idempotency keys are concerned: a key is only ever matched within one credential.
CREDENTIAL = web.RequestKey("streamloop_credential", str)
IDEMPOTENT_METHODS = frozenset({"POST", "PATCH"})


def render_error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> web.Response:
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    problem = {
        "type": PROBLEM_TYPE_BASE + code.lower().replace("_", "-"),
        "title": title,
        "status": status,
        "detail": message,
        "code": code,
    }
    return json_response(problem, status, content_type=PROBLEM_JSON, headers=headers)


PROFILE = VendorProfile(name="streamloop", prefix=PREFIX, render_error=render_error)


def rate_limit() -> Middleware:
    """Every answer carries the quota; a spent quota answers 429 before anything else happens."""

    @web.middleware
    async def limit(request: web.Request, handler: Handler) -> web.StreamResponse:
        state = sim_state(request)
        caller = request.headers.get("Authorization") or request.headers.get("X-API-Key") or "anonymous"
        quota = state.streamloop_limiter.take(caller, state.clock.now())
        if not quota.allowed:
            headers = quota.headers() | {"Retry-After": str(quota.reset_seconds)}
            return render_error(429, "RATE_LIMITED", "rate limit exceeded; retry later", headers)
        response = await handler(request)
        response.headers.update(quota.headers())
        return response

    return limit


def authenticate() -> Middleware:
    """An OAuth bearer token, or an API key with the workspace it acts in."""

    @web.middleware
    async def check_credentials(request: web.Request, handler: Handler) -> web.StreamResponse:
        token = sim_state(request).config.token
        authorization = request.headers.get("Authorization")
        api_key = request.headers.get("X-API-Key")
        if authorization is not None:
            if authorization != f"Bearer {token}":
                return render_error(401, "UNAUTHORIZED", "the bearer token is missing, invalid or expired")
            request[CREDENTIAL] = "bearer"
        elif api_key is not None:
            if api_key != token:
                return render_error(401, "UNAUTHORIZED", "the API key is invalid")
            workspace = request.headers.get("X-Workspace-Id", "")
            if not workspace:
                return render_error(400, "WORKSPACE_REQUIRED", "X-Workspace-Id is required with an API key")
            request[CREDENTIAL] = f"workspace:{workspace}"
        else:
            return render_error(401, "UNAUTHORIZED", "authentication is required")
        return await handler(request)

    return check_credentials


def idempotency() -> Middleware:
    @web.middleware
    async def replay_or_run(request: web.Request, handler: Handler) -> web.StreamResponse:
        key = request.headers.get("Idempotency-Key")
        if request.method not in IDEMPOTENT_METHODS or not key:
            return await handler(request)
        state = sim_state(request)
        store = state.streamloop_idempotency
        scope = (request[CREDENTIAL], key)
        request_print = fingerprint(request.method, request.path_qs, await request.read())
        while True:
            decision = store.claim(scope, request_print, state.clock.now())
            if isinstance(decision, Replay):
                answer = decision.answer
                return web.Response(
                    status=answer.status,
                    body=answer.body,
                    content_type=answer.content_type,
                    headers={"Idempotency-Replayed": "true"},
                )
            if isinstance(decision, Reused):
                return render_error(
                    422, "IDEMPOTENCY_KEY_REUSED", "this Idempotency-Key was used with a different request"
                )
            if isinstance(decision, Wait):
                await asyncio.shield(decision.done)
                continue
            assert isinstance(decision, Claimed)
            break
        kept: StoredAnswer | None = None
        try:
            response = await handler(request)
            body = response.body if isinstance(response, web.Response) else None
            if response.status < 500 and (body is None or isinstance(body, bytes)):
                kept = StoredAnswer(
                    fingerprint=request_print,
                    status=response.status,
                    body=body or b"",
                    content_type=response.content_type,
                    stored_at=state.clock.now(),
                )
            return response
        finally:
            store.finish(scope, kept)

    return replay_or_run
