"""Persisted GraphQL documents: the text of each operation known by an id, kept for every replica.

An id names one text forever (clients cache the pair), so a document is never changed once stored: a
second text under a known id is refused. `sha256` is the hash of the text, which is what an automatic
persisted query sends and what trusted mode checks a text by; `trusted` marks documents loaded by an
operator (`live-gateway documents push`), as opposed to ones registered by clients on first use.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

from pymongo.errors import DuplicateKeyError

from gateway.model import utcnow
from gateway.store.mongo import Database, compare_and_swap, ensure_index, utc_collection


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class StoredDocument:
    id: str
    text: str
    sha256: str
    trusted: bool


class DocumentConflict(Exception):
    """An id that already names another text."""

    def __init__(self, document_id: str) -> None:
        super().__init__(f"document {document_id} is stored with another text; an id names one text forever")
        self.document_id = document_id


def _document(doc: dict[str, Any]) -> StoredDocument:
    return StoredDocument(id=doc["_id"], text=doc["text"], sha256=doc["sha256"], trusted=bool(doc.get("trusted")))


class Documents:
    def __init__(self, db: Database) -> None:
        self.collection = utc_collection(db, "documents")

    async def ensure_indexes(self) -> None:
        await ensure_index(self.collection, [("sha256", 1)])

    async def by_id(self, document_id: str) -> StoredDocument | None:
        doc = await self.collection.find_one({"_id": document_id})
        return _document(doc) if doc is not None else None

    async def by_text_hash(self, sha256: str, *, trusted: bool) -> StoredDocument | None:
        query: dict[str, Any] = {"sha256": sha256}
        if trusted:
            query["trusted"] = True
        doc = await self.collection.find_one(query)
        return _document(doc) if doc is not None else None

    async def count_registered(self, *, limit: int) -> int:
        """How many documents clients registered (not loaded by an operator), counted up to `limit`."""
        if limit <= 0:
            return 0
        return await self.collection.count_documents({"trusted": False}, limit=limit)

    async def put(self, document_id: str, text: str, *, trusted: bool, name: str | None = None) -> StoredDocument:
        """Stores `text` under `document_id` (trusted: loaded by an operator). Storing the same pair again
        changes nothing, except that a registered document an operator loads becomes trusted.

        Raises `DocumentConflict` when the id names another text."""
        digest = sha256_hex(text)
        fields = {"text": text, "sha256": digest, "trusted": trusted, "name": name, "stored_at": utcnow()}
        try:
            await self.collection.insert_one({"_id": document_id, "rev": 1, **fields})
        except DuplicateKeyError:
            stored = await self.collection.find_one({"_id": document_id})
            known = _document(stored) if stored is not None else None
            if stored is None or known is None or known.text != text:
                raise DocumentConflict(document_id) from None
            if trusted and not known.trusted:
                # A compare-and-swap on the revision read: what changes is only that the operator vouches
                # for the text already there (a concurrent vouching for it lands the same).
                await compare_and_swap(self.collection, document_id, stored.get("rev"), {"trusted": True})
            return StoredDocument(document_id, text, digest, trusted or known.trusted)
        return StoredDocument(document_id, text, digest, trusted)
