"""Which media type a GraphQL answer is sent in, from the request's Accept header; the error document
of an answer refused before any GraphQL ran."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import orjson

JSON = "application/json"
GRAPHQL_RESPONSE = "application/graphql-response+json"
EVENT_STREAM = "text/event-stream"
MULTIPART_MIXED = "multipart/mixed"
#: the directives whose results come in parts; a document without either text never does
INCREMENTAL_DIRECTIVES = ("@defer", "@stream")
UTF8 = frozenset({"utf-8", "utf8"})


def error_document(message: str, extensions: Mapping[str, Any]) -> bytes:
    """The body of an answer refused before any GraphQL ran: one error, with its code in `extensions`."""
    return orjson.dumps({"errors": [{"message": message, "extensions": dict(extensions)}]})


#: Accept headers whose answers are remembered: a client sends the same one with every request
ACCEPT_VALUES = 256


@lru_cache(maxsize=ACCEPT_VALUES)
def negotiate(accept: str | None) -> str | None:
    """The response media type an Accept header asks for, or None when it admits neither GraphQL one.

    The highest q wins; then a type named outright over one a wildcard admits; then the one listed first.
    A bare wildcard gets application/json, which every client understands.
    """
    if accept is None or not accept.strip():
        return JSON
    ranked: list[tuple[float, int, int, int, str]] = []
    # Listed so that on a full tie (one wildcard admitting both) the later one, application/json, wins.
    for tie_break, offered in enumerate((GRAPHQL_RESPONSE, JSON)):
        match = _best_range(accept, offered)
        if match is not None and match[0] > 0:
            quality, specificity, position = match
            ranked.append((quality, specificity, -position, tie_break, offered))
    return max(ranked)[-1] if ranked else None


def accepts_multipart(accept: str | None) -> bool:
    """True when Accept names multipart/mixed (as Apollo's, Hive's and GraphiQL's clients send it, with or
    without `deferSpec=20220824`) with a q above 0."""
    match = _best_range(accept or "", MULTIPART_MIXED)
    return match is not None and match[1] == 2 and match[0] > 0


def may_deliver_incrementally(query: str | None) -> bool:
    """Whether a document may use @defer or @stream: a cheap look at its text, so that every other request
    keeps the plain path; the execution decides for sure."""
    return query is not None and any(directive in query for directive in INCREMENTAL_DIRECTIVES)


@lru_cache(maxsize=ACCEPT_VALUES)
def prefers_event_stream(accept: str | None) -> bool:
    """True when Accept names text/event-stream outright and ranks it above both JSON types (by q, then by
    which is listed first). A wildcard never asks for a stream: a client must know it will get one."""
    if not accept:
        return False
    stream = _best_range(accept, EVENT_STREAM)
    if stream is None or stream[1] < 2 or stream[0] <= 0:
        return False
    for offered in (GRAPHQL_RESPONSE, JSON):
        document = _best_range(accept, offered)
        if document is not None and document[1] == 2 and (document[0], -document[2]) >= (stream[0], -stream[2]):
            return False
    return True


def _best_range(accept: str, offered: str) -> tuple[float, int, int] | None:
    """(q, specificity, position) of the most specific media range in `accept` that admits `offered`."""
    offered_type, offered_subtype = offered.split("/")
    best: tuple[float, int, int] | None = None
    for position, media_range in enumerate(accept.split(",")):
        name, *params = (part.strip() for part in media_range.split(";"))
        kind, _, subkind = name.lower().partition("/")
        if name == "*":  # sent by some old clients for */*
            kind, subkind = "*", "*"
        if kind == offered_type and subkind == offered_subtype:
            specificity = 2
        elif kind == offered_type and subkind == "*":
            specificity = 1
        elif kind == "*" and subkind == "*":
            specificity = 0
        else:
            continue
        values = {key.strip().lower(): value.strip().strip('"') for key, _, value in (p.partition("=") for p in params)}
        # Responses are always UTF-8: a range asking for another charset admits nothing we send.
        if values.get("charset", "utf-8").lower() not in UTF8:
            continue
        try:
            quality = min(max(float(values.get("q", "1")), 0.0), 1.0)
        except ValueError:
            continue
        if best is None or specificity > best[1]:
            best = (quality, specificity, position)
    return best
