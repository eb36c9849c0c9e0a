"""What makes the parameters of a GraphQL request well-formed, over HTTP and websockets alike: one rule,
so that a request refused over one is refused with the same words over the other."""

from __future__ import annotations

from collections.abc import Mapping

QUERY_REQUIRED = "`query` is required: the GraphQL document to run, as a string"


def shape_error(params: Mapping[str, object]) -> str | None:
    """Why `params` (a request body, URL parameters, a subscribe message's payload) is not a well-formed
    GraphQL request, or None. A request may name its document (`documentId`, a persisted-query hash in
    `extensions`) instead of sending it."""
    query = params.get("query")
    if query is None and "documentId" not in params and not isinstance(params.get("extensions"), dict):
        return QUERY_REQUIRED
    if not isinstance(query, str | None):
        return "`query` must be a string"
    if not isinstance(params.get("operationName"), str | None):
        return "`operationName` must be a string or null"
    if not isinstance(params.get("variables"), dict | None):
        return "`variables` must be an object or null"
    if not isinstance(params.get("extensions"), dict | None):
        return "`extensions` must be an object or null"
    return None
