"""Persisted and trusted documents: an operation known by its hash or id instead of its text.

Two ways in, as clients speak them:
- automatic persisted queries (Apollo, Hive): `extensions.persistedQuery = {version: 1, sha256Hash}`; a hash
  the gateway does not know answers `PERSISTED_QUERY_NOT_FOUND`, and the client sends the text with its
  hash once, which registers it (mode `apq`);
- `documentId` (in the body or the GET URL): an id from a persisted-query manifest (Apollo's
  `persisted-query-manifest.json`, Relay's `persisted_queries.json`) loaded by `live-gateway documents push`.

In mode `trusted` only the documents an operator loaded run (by id, or by the same text), except for the
roles the setting exempts. The documents live in MongoDB for every replica; each replica remembers the
ones it has used (an id names one text forever, so what is remembered never goes stale).
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension

from gateway.request_shape import QUERY_REQUIRED
from gateway.settings import DocumentMode, DocumentSettings, Role
from gateway.store.documents import Documents, StoredDocument, sha256_hex

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
#: the longest document id accepted
MAX_ID_LENGTH = 256

PERSISTED_QUERY_NOT_FOUND = "PERSISTED_QUERY_NOT_FOUND"
PERSISTED_QUERY_NOT_SUPPORTED = "PERSISTED_QUERY_NOT_SUPPORTED"
PERSISTED_QUERY_HASH_MISMATCH = "PERSISTED_QUERY_HASH_MISMATCH"
DOCUMENT_NOT_TRUSTED = "DOCUMENT_NOT_TRUSTED"
#: whether the HTTP view resolved and checked this request's document already
DOCUMENT_CHECKED = web.RequestKey("document_checked", bool)


class DocumentRefused(Exception):
    """A request whose document cannot run: its HTTP status, GraphQL error code and message."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class DocumentRequest:
    """What a request says about its document."""

    query: str | None
    document_id: str | None
    apq_hash: str | None

    @classmethod
    def from_params(cls, params: Mapping[str, object]) -> DocumentRequest:
        query = params.get("query")
        document_id = params.get("documentId")
        if document_id is not None and (not isinstance(document_id, str) or not 0 < len(document_id) <= MAX_ID_LENGTH):
            raise DocumentRefused(
                400, "BAD_REQUEST", f"`documentId` must be a string of 1 to {MAX_ID_LENGTH} characters"
            )
        extensions = params.get("extensions")
        persisted = extensions.get("persistedQuery") if isinstance(extensions, dict) else None
        apq_hash = None
        if persisted is not None:
            if not isinstance(persisted, dict) or persisted.get("version") != 1:
                raise DocumentRefused(
                    400, "BAD_REQUEST", "`extensions.persistedQuery` must be {version: 1, sha256Hash}: version 1 only"
                )
            apq_hash = persisted.get("sha256Hash")
            if not isinstance(apq_hash, str) or not _SHA256.match(apq_hash):
                raise DocumentRefused(
                    400, "BAD_REQUEST", "`extensions.persistedQuery.sha256Hash` must be 64 lowercase hex digits"
                )
        if document_id is not None and (query is not None or apq_hash is not None):
            raise DocumentRefused(
                400, "BAD_REQUEST", "send a `documentId` alone, or a `query` (with its persisted-query hash)"
            )
        return cls(query if isinstance(query, str) or query is None else None, document_id, apq_hash)

    @property
    def by_reference(self) -> bool:
        """Whether the request names its document instead of sending it."""
        return self.query is None and (self.document_id is not None or self.apq_hash is not None)


class _Remembered:
    """The last `size` documents used, by key."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, StoredDocument] = OrderedDict()

    def get(self, key: str) -> StoredDocument | None:
        found = self._items.get(key)
        if found is not None:
            self._items.move_to_end(key)
        return found

    def put(self, key: str, document: StoredDocument) -> None:
        if self.size == 0:
            return
        self._items[key] = document
        self._items.move_to_end(key)
        while len(self._items) > self.size:
            self._items.popitem(last=False)


class PersistedDocuments:
    """Turns a request's document reference into the text to run, registering and refusing as the mode says."""

    def __init__(self, store: Documents, settings: DocumentSettings) -> None:
        self.store = store
        self.settings = settings
        self._by_id = _Remembered(settings.remembered)
        self._trusted_by_hash = _Remembered(settings.remembered)

    def trusted_only(self, role: Role | None) -> bool:
        return self.settings.mode is DocumentMode.TRUSTED and role not in self.settings.exempt_roles

    async def text_of(self, request: DocumentRequest, role: Role | None) -> str:
        """The document text `request` runs, or `DocumentRefused`. In trusted mode the text returned is a
        trusted one, unless `role` is exempt."""
        mode = self.settings.mode
        if mode is DocumentMode.OFF and (request.document_id is not None or request.apq_hash is not None):
            raise DocumentRefused(
                400, PERSISTED_QUERY_NOT_SUPPORTED, "PersistedQueryNotSupported: send the document's text as `query`"
            )
        trusted_only = self.trusted_only(role)
        if request.document_id is not None:
            found = await self._by_document_id(request.document_id)
            if found is None or (trusted_only and not found.trusted):
                raise DocumentRefused(
                    404, PERSISTED_QUERY_NOT_FOUND, f"no document with id {request.document_id!r} is known here"
                )
            return found.text
        if request.apq_hash is not None and request.query is None:
            found = await self._by_hash(request.apq_hash, trusted=trusted_only)
            if found is None:
                # 200 as the APQ protocol has it: a client sends the text next (a 400 turns APQ off in Apollo's).
                raise DocumentRefused(200, PERSISTED_QUERY_NOT_FOUND, "PersistedQueryNotFound")
            return found.text
        if request.query is None:
            raise DocumentRefused(400, "BAD_REQUEST", QUERY_REQUIRED)
        if request.apq_hash is not None:
            if sha256_hex(request.query) != request.apq_hash:
                raise DocumentRefused(
                    400,
                    PERSISTED_QUERY_HASH_MISMATCH,
                    "`extensions.persistedQuery.sha256Hash` is not the SHA-256 of `query`",
                )
            if not trusted_only:
                await self._register(request.apq_hash, request.query)
        if trusted_only:
            await self.check_trusted(request.query)
        return request.query

    async def _register(self, sha256: str, text: str) -> None:
        """Keeps a client's text under its hash, within bounds: registrations go to the MongoDB every caller
        shares, so a text longer than `max_registered_bytes`, or one past `max_registered` registered
        documents, runs without being kept (its client keeps sending the text with the hash)."""
        if self._by_id.get(sha256) is not None or len(text.encode()) > self.settings.max_registered_bytes:
            return
        limit = self.settings.max_registered
        if await self.store.by_id(sha256) is None and await self.store.count_registered(limit=limit) >= limit:
            return
        stored = await self.store.put(sha256, text, trusted=False)
        self._by_id.put(stored.id, stored)

    async def check_trusted(self, text: str) -> None:
        if await self._by_hash(sha256_hex(text), trusted=True) is None:
            raise DocumentRefused(
                403,
                DOCUMENT_NOT_TRUSTED,
                "only trusted documents run here: send the `documentId` of a document loaded with "
                "`live-gateway documents push`",
            )

    async def _by_document_id(self, document_id: str) -> StoredDocument | None:
        found = self._by_id.get(document_id)
        if found is None:
            found = await self.store.by_id(document_id)
            if found is not None:
                self._by_id.put(document_id, found)
        return found

    async def _by_hash(self, sha256: str, *, trusted: bool) -> StoredDocument | None:
        if trusted:
            found = self._trusted_by_hash.get(sha256)
            if found is None:
                found = await self.store.by_text_hash(sha256, trusted=True)
                if found is not None:
                    self._trusted_by_hash.put(sha256, found)
            return found
        # An APQ hash is the id it was registered under; a pushed document may be known by its text's hash.
        return await self._by_document_id(sha256) or await self.store.by_text_hash(sha256, trusted=False)


class TrustedDocumentsOnly(SchemaExtension):
    """Trusted mode for operations that do not come through the HTTP view's check (websocket subscribes):
    a text runs only when it is a trusted document's, unless the caller's role is exempt. It must come after
    the extensions that validate."""

    async def on_validate(self) -> Any:  # an async generator, as Strawberry's hooks may be
        # Before the yield, and after the validating extensions' own (this one comes after them), so that the
        # refusal is among the validation errors when Strawberry looks: every transport then answers it as a
        # request that never ran.
        context = self.execution_context
        if not context.pre_execution_errors:
            refused = await self._refusal()
            if refused is not None:
                context.pre_execution_errors = [GraphQLError(refused.message, extensions={"code": refused.code})]
        yield

    async def _refusal(self) -> DocumentRefused | None:
        context = self.execution_context.context
        documents: PersistedDocuments | None = getattr(getattr(context, "services", None), "documents", None)
        request = getattr(context, "request", None)
        if documents is None or (request is not None and request.get(DOCUMENT_CHECKED, False)):
            return None
        principal = getattr(context, "principal", None)
        if not documents.trusted_only(principal.role if principal else None) or self.execution_context.query is None:
            return None
        try:
            await documents.check_trusted(self.execution_context.query)
        except DocumentRefused as refused:
            return refused
        return None


def iter_manifest(data: Any) -> Iterator[tuple[str, str, str | None]]:
    """(id, text, operation name) of each document in an Apollo persisted-query manifest
    (`{"format": "apollo-persisted-query-manifest", "version": 1, "operations": [{id, body, name}]}`) or a
    Relay `persisted_queries.json` (`{"<id>": "<text>"}`). Raises ValueError naming what is wrong."""
    if isinstance(data, dict) and data.get("format") == "apollo-persisted-query-manifest":
        if data.get("version") != 1:
            raise ValueError("an Apollo persisted-query manifest of version 1 is expected")
        operations = data.get("operations")
        if not isinstance(operations, list):
            raise ValueError("`operations` must be a list")
        for number, operation in enumerate(operations):
            if not isinstance(operation, dict):
                raise ValueError(f"operations[{number}] must be an object")
            document_id, body = operation.get("id"), operation.get("body")
            if not isinstance(document_id, str) or not document_id or not isinstance(body, str) or not body:
                raise ValueError(f"operations[{number}] needs a string `id` and `body`")
            name = operation.get("name")
            yield document_id, body, name if isinstance(name, str) else None
        return
    if isinstance(data, dict) and data:
        for document_id, text in data.items():
            if not isinstance(text, str) or not text:
                raise ValueError(f"{document_id!r}: the text of a document must be a non-empty string")
            yield document_id, text, None
        return
    raise ValueError("neither an Apollo persisted-query manifest nor a Relay persisted_queries.json object")
