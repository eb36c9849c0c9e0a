"""What stands between the network and every vendor's handlers: counting, faults and error shapes."""

from __future__ import annotations

import asyncio
import math
from dataclasses import dataclass
from typing import Literal

from aiohttp import web
from aiohttp.typedefs import Handler, Middleware

from .errors import ErrorRenderer, SimError, code_for_status
from .faults import FaultBook, VendorFaults
from .state import sim_state
from .stats import UNANSWERED
from .validation import InvalidBody
from .wire import BodyNotJson

UNMATCHED_ROUTE = "<unmatched>"
# How often a held request looks to see whether its client has gone.
_CLIENT_POLL_SECONDS = 0.02

HoldEnd = Literal["elapsed", "released", "client_gone"]


@dataclass(frozen=True)
class VendorProfile:
    name: str
    prefix: str
    render_error: ErrorRenderer


# Set on a request that the `hang` fault has already counted, so that it is not counted twice.
COUNTED_ON_ARRIVAL = web.RequestKey("sim_counted_on_arrival", bool)


class RequestAbandoned(Exception):
    """A held request ends without an answer: the connection is closed and nothing is written."""


def route_template(request: web.Request, prefix: str) -> str:
    resource = request.match_info.route.resource
    if resource is None:
        return UNMATCHED_ROUTE
    return resource.canonical.removeprefix(prefix) or "/"


def stats_middleware(profile: VendorProfile) -> Middleware:
    @web.middleware
    async def count_requests(request: web.Request, handler: Handler) -> web.StreamResponse:
        stats = sim_state(request).stats
        # Anything that escapes without an answer (an abandoned hang, a client that gave up and got
        # its handler cancelled) counts as unanswered; an unexpected exception is aiohttp's 500.
        status = UNANSWERED
        try:
            response = await handler(request)
            status = response.status
            return response
        except web.HTTPException as exc:
            status = exc.status
            raise
        except RequestAbandoned:
            # The transport is closed, so this is never written; returning keeps aiohttp's logs quiet.
            return web.Response(status=499)
        except Exception:
            status = 500
            raise
        finally:
            if not request.get(COUNTED_ON_ARRIVAL, False):
                route = route_template(request, profile.prefix)
                stats.record(profile.name, request.method, route, status, request.headers)

    return count_requests


def faults_middleware(profile: VendorProfile) -> Middleware:
    @web.middleware
    async def misbehave(request: web.Request, handler: Handler) -> web.StreamResponse:
        state = sim_state(request)
        book = state.faults
        faults = book.current(profile.name)
        if not faults.touches_traffic:
            return await handler(request)
        delay_ms = faults.latency_ms + (book.rng.uniform(0, faults.jitter_ms) if faults.jitter_ms else 0.0)
        # Latency comes before the handler runs, never in the middle of one.
        if delay_ms > 0 and await hold_request(request, book, delay_ms / 1000) == "client_gone":
            _drop(request)
        if faults.hang:
            state.stats.record(profile.name, request.method, route_template(request, profile.prefix), UNANSWERED)
            request[COUNTED_ON_ARRIVAL] = True
            await hold_request(request, book, math.inf)
            _drop(request)
        early = _fault_answer(profile, faults, book)
        if early is not None:
            return early
        response = await handler(request)
        if faults.malformed_json:
            return _malformed(response)
        return response

    return misbehave


def _fault_answer(profile: VendorProfile, faults: VendorFaults, book: FaultBook) -> web.Response | None:
    render = profile.render_error
    if faults.unauthorized:
        return render(401, "UNAUTHORIZED", "invalid or expired credentials")
    if faults.rate_limited is not None:
        retry_after = str(math.ceil(faults.rate_limited))
        return render(429, "RATE_LIMITED", "too many requests", {"Retry-After": retry_after})
    if faults.reject_status is not None:
        status = faults.reject_status
        return render(status, code_for_status(status), "the vendor rejected the request")
    failing = book.take_burst(profile.name) or (faults.error_rate > 0 and book.rng.random() < faults.error_rate)
    if failing:
        status = faults.error_status
        return render(status, code_for_status(status), "the service is having trouble; try again later")
    return None


async def hold_request(request: web.Request, book: FaultBook, seconds: float) -> HoldEnd:
    """Keep a request waiting for `seconds`, or less if its client leaves or the faults change."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (transport := request.transport) is not None and not transport.is_closing():
        remaining = deadline - loop.time()
        if remaining <= 0:
            return "elapsed"
        if await book.hold(min(remaining, _CLIENT_POLL_SECONDS)):
            return "released"
    return "client_gone"


def _drop(request: web.Request) -> None:
    """End a request without an answer."""
    if (transport := request.transport) is not None:
        transport.close()
    raise RequestAbandoned


def _malformed(response: web.StreamResponse) -> web.Response:
    """A 200 whose body is the real answer cut short, so it is never valid JSON."""
    body = response.body if isinstance(response, web.Response) else None
    raw = body if isinstance(body, bytes) else b""
    truncated = raw[: len(raw) // 2] if len(raw) > 1 else b"{"
    return web.Response(status=200, body=truncated, content_type="application/json")


def errors_middleware(profile: VendorProfile) -> Middleware:
    """Every error leaves in the vendor's own shape, including aiohttp's own 404 and 405."""

    @web.middleware
    async def shape_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except SimError as exc:
            return profile.render_error(exc.status, exc.code, exc.message, exc.headers)
        except InvalidBody as exc:
            return profile.render_error(400, "VALIDATION_FAILED", str(exc))
        except BodyNotJson:
            return profile.render_error(400, "VALIDATION_FAILED", "the body is not valid JSON")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            return profile.render_error(exc.status, code_for_status(exc.status), exc.reason, _allow_header(exc))

    return shape_errors


def _allow_header(exc: web.HTTPException) -> dict[str, str]:
    allow = exc.headers.get("Allow")
    return {"Allow": allow} if allow else {}
