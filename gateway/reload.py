"""Settings that change without a restart. On SIGHUP the gateway reads its settings again (the environment
it started with, and the `.env` file in its working directory, whose values the environment's override)
and takes the new credentials (API keys, JWT secret, public key, JWKS file or URL), CORS origins and
limits. Open connections stay open: a websocket or event stream keeps the caller it was admitted as, and
new operations on an open socket keep the query limits of when it opened. What changed is logged, secrets
by name only; settings that fail to validate change nothing."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Callable
from typing import Any

from aiohttp import web
from pydantic import BaseModel, SecretStr, ValidationError
from strawberry.http.websocket_origin import normalize_allowed_origins

from gateway.auth import Authenticator
from gateway.cors import CORS_POLICY, CorsPolicy
from gateway.graphql_http import GRAPHQL_VIEW
from gateway.keys import AUTHENTICATOR, CALLER_SOCKETS, RATE_LIMIT, SERVICES, SETTINGS
from gateway.ratelimit import CallerRateLimit
from gateway.schema import build_schema
from gateway.settings import ApiKey, ConfigurationError, Settings

log = logging.getLogger(__name__)

#: the sections taken again on a reload; the rest (vendors, MongoDB, ports...) need a restart
RELOADED = ("auth", "cors", "limits")
#: fields of those sections read once, when the server starts
READ_AT_START = frozenset({("limits", "max_body_bytes"), ("limits", "introspection")})
#: fields whose values are never logged
SECRET = frozenset({("auth", "jwt_secret"), ("auth", "jwt_public_key")})


def describe_changes(old: Settings, new: Settings) -> list[str]:
    """One line per changed field of the reloaded sections, and one for any other section that changed."""
    lines = []
    for section in RELOADED:
        before, after = getattr(old, section), getattr(new, section)
        for name in type(before).model_fields:
            was, now = getattr(before, name), getattr(after, name)
            if was == now:
                continue
            if name == "api_keys":
                line = f"{section}.{name}: {_key_changes(was, now)}"
            elif (section, name) in SECRET or isinstance(was, SecretStr) or isinstance(now, SecretStr):
                line = f"{section}.{name} changed"
            else:
                line = f"{section}.{name}: {_shown(was)} -> {_shown(now)}"
            if (section, name) in READ_AT_START:
                line += " (read at start: takes effect at the next restart)"
            lines.append(line)
    for section in type(old).model_fields:
        if section not in RELOADED and getattr(old, section) != getattr(new, section):
            lines.append(f"{section} changed (not reloaded: takes effect at the next restart)")
    return lines


def _key_changes(before: list[ApiKey], after: list[ApiKey]) -> str:
    def entries(keys: list[ApiKey]) -> dict[tuple[str, str, str], str]:
        return {(key.name, key.sha256, key.role.value): f"{key.name} ({key.role.value})" for key in keys}

    was, now = entries(before), entries(after)
    added = [label for entry, label in now.items() if entry not in was]
    removed = [label for entry, label in was.items() if entry not in now]
    parts = [f"added {', '.join(added)}" if added else "", f"removed {', '.join(removed)}" if removed else ""]
    return "; ".join(part for part in parts if part)


def _shown(value: Any) -> str:
    if isinstance(value, BaseModel):
        return repr(value.model_dump())
    return repr(value)


def apply_settings(app: web.Application, new: Settings) -> list[str]:
    """Takes the reloaded sections of `new`; returns what changed. Everything is built before anything is
    swapped, so settings that do not hold (no credentials left, a bad origin) change nothing."""
    settings = app[SETTINGS]
    changes = describe_changes(settings, new)
    Authenticator(new.auth).check_configured()
    CorsPolicy(new.cors)
    CallerRateLimit(new.limits.rate_limit)
    CallerRateLimit(new.limits.vendor_call_budget)
    view = app[GRAPHQL_VIEW]
    schema = build_schema(new) if new.limits != settings.limits else view.schema
    # From here on nothing can fail.
    app[AUTHENTICATOR].configure(new.auth)
    app[CORS_POLICY].configure(new.cors)
    view.allowed_origins = normalize_allowed_origins(new.cors.allow_origins)
    app[RATE_LIMIT].configure(new.limits.rate_limit)
    app[CALLER_SOCKETS].limit = new.limits.max_sockets_per_caller
    if SERVICES in app:
        app[SERVICES].vendor_budget.configure(new.limits.vendor_call_budget)
        if schema is not view.schema:
            # Answers kept so far passed the limits of then; under the new ones some would be refused.
            app[SERVICES].responses.clear()
    view.schema = schema
    # In place: every part that reads the settings as it goes (Services included) sees the new sections.
    for section in RELOADED:
        setattr(settings, section, getattr(new, section))
    return changes


def reload_settings(app: web.Application, read: Callable[[], Settings] = Settings) -> bool:
    """Reads the settings again and takes them, logging what changed; True when they were taken."""
    try:
        changes = apply_settings(app, read())
    except (ValidationError, ConfigurationError, ValueError, TypeError) as exc:
        log.error("settings not reloaded, the ones in force stay: %s", str(exc).replace("\n", "; "))
        return False
    if changes:
        log.info("settings reloaded: %s", "; ".join(changes))
    else:
        log.info("settings reloaded: nothing changed")
    return True


def reload_on_sighup(app: web.Application) -> Callable[[], None]:
    """Reload on SIGHUP (where the platform has it); returns what removes the handler."""
    if not hasattr(signal, "SIGHUP"):
        return lambda: None
    loop = asyncio.get_running_loop()

    def hangup() -> None:
        log.info("SIGHUP: reading the settings again")
        reload_settings(app)

    loop.add_signal_handler(signal.SIGHUP, hangup)

    def remove() -> None:
        loop.remove_signal_handler(signal.SIGHUP)

    return remove
