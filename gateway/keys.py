"""The typed keys the application and its requests carry, in one place so every module names them alike."""

from __future__ import annotations

from aiohttp import web

from gateway.auth import Authenticator, Principal
from gateway.context import Services
from gateway.observability import Metrics
from gateway.ratelimit import CallerRateLimit, CallerSockets
from gateway.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
SERVICES = web.AppKey("services", Services)
REQUEST_ID = web.RequestKey("request_id", str)
#: who made the request, once the auth middleware has checked their credentials
PRINCIPAL = web.RequestKey("principal", Principal)
AUTHENTICATOR = web.AppKey("authenticator", Authenticator)
METRICS = web.AppKey("metrics", Metrics)
#: each caller's request rate, over HTTP and websockets alike
RATE_LIMIT = web.AppKey("rate_limit", CallerRateLimit)
#: the websockets each caller holds open
CALLER_SOCKETS = web.AppKey("caller_sockets", CallerSockets)
