"""HTTP's own caching and compression of /graphql answers.

A GET query's answer carries `Cache-Control` and a strong `ETag`, and `If-None-Match` with that tag
answers 304 without a body: an answer kept by the response cache may be kept by HTTP caches as long
(`public, max-age` = the seconds it stays good), any other good answer must be revalidated (`no-cache`),
and an answer with errors is not kept (`no-store`). Answers vary with the credentials, so a shared cache
keeps one per caller. An answer of at least `compress_min_bytes` is sent gzip-compressed to a client
whose `Accept-Encoding` takes gzip; its tag then names the coding, as a strong tag must.
"""

from __future__ import annotations

import hashlib
import math

from aiohttp import hdrs, web
from aiohttp.web_response import ContentCoding

from gateway.auth import API_KEY_HEADER
from gateway.cors import add_vary

#: seconds the response cache keeps this request's answer; absent when it is not kept
CACHE_MAX_AGE = web.RequestKey("response_cache_max_age", float)
#: whether this request's answer holds errors
ANSWER_HAS_ERRORS = web.RequestKey("answer_has_errors", bool)
CACHE_STATUS_HEADER = "X-Cache"


def accepts_gzip(request: web.Request) -> bool:
    for part in request.headers.get(hdrs.ACCEPT_ENCODING, "").lower().split(","):
        coding, _, params = part.strip().partition(";")
        if coding.strip() in ("gzip", "*"):
            q = params.strip()
            return not (q.startswith("q=") and _quality(q[2:]) == 0)
    return False


def _quality(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 1.0


def _matches(if_none_match: str, etag: str) -> bool:
    tags = [tag.strip() for tag in if_none_match.split(",")]
    # Weak comparison, as If-None-Match asks: W/"x" matches "x".
    return "*" in tags or any(tag.removeprefix("W/") == etag for tag in tags)


def finish(
    request: web.Request, response: web.StreamResponse, compress_min_bytes: int, vary: tuple[str, ...] = ()
) -> web.StreamResponse:
    """Cache headers, 304 and compression for a /graphql answer that is not yet sent; `vary` names the
    request headers the answer varies with besides those these depend on."""
    if response.prepared or not isinstance(response, web.Response) or not isinstance(response.body, bytes):
        add_vary(response.headers, *vary)
        return response
    body = response.body
    gzip = len(body) >= compress_min_bytes and accepts_gzip(request)
    varies = [*vary, hdrs.ACCEPT_ENCODING]
    etag: str | None = None
    if request.method == hdrs.METH_GET and response.status == 200:
        max_age = request.get(CACHE_MAX_AGE)
        if request.get(ANSWER_HAS_ERRORS, True):
            cache_control = "no-store"
        elif max_age is not None:
            cache_control = f"public, max-age={max(0, math.floor(max_age))}"
        else:
            cache_control = "no-cache"
        response.headers[hdrs.CACHE_CONTROL] = cache_control
        if cache_control != "no-store":
            etag = f'"{hashlib.blake2b(body, digest_size=16).hexdigest()}{"-gzip" if gzip else ""}"'
            response.headers[hdrs.ETAG] = etag
            varies += [hdrs.AUTHORIZATION, API_KEY_HEADER]
    add_vary(response.headers, *varies)
    if etag is not None:
        if_none_match = request.headers.get(hdrs.IF_NONE_MATCH)
        if if_none_match is not None and _matches(if_none_match, etag):
            not_modified = web.Response(status=304)
            for name in (hdrs.CACHE_CONTROL, hdrs.ETAG, hdrs.VARY, CACHE_STATUS_HEADER):
                if name in response.headers:
                    not_modified.headers[name] = response.headers[name]
            return not_modified
    if gzip:
        response.enable_compression(ContentCoding.gzip)
    return response
