"""Claims: which operation target each vendor object a create made or found belongs to.

One document per vendor object (collection `claims`, `_id` = `"<SOURCE>:<native_id>"`), inserted before
the outcome is journaled. The `_id` is unique, so an object belongs to one operation target only: a
lookup after an interrupted create leaves out the objects other operations claimed, and a claim that
loses to another operation's says so.
"""

from __future__ import annotations

from collections.abc import Iterable

from pymongo.errors import ConnectionFailure, DuplicateKeyError

from gateway.model import Source, utcnow
from gateway.store.mongo import Database, utc_collection


def claim_id(source: Source, native_id: str) -> str:
    return f"{source.value}:{native_id}"


class ClaimOutcomeUnknown(Exception):
    """The server could not say whether the claim landed."""


class Claims:
    def __init__(self, db: Database) -> None:
        self.collection = utc_collection(db, "claims")

    async def claim(self, source: Source, native_id: str, operation_id: str) -> bool:
        """Bind the object to `operation_id`'s target; whether it belongs to it now (False: it belongs to
        another operation). A claim whose reply is lost is read back by its `_id`."""
        _id = claim_id(source, native_id)
        doc = {"_id": _id, "source": source.value, "native_id": native_id, "operation_id": operation_id}
        try:
            await self.collection.insert_one({**doc, "at": utcnow()})
            return True
        except (DuplicateKeyError, ConnectionFailure):
            pass
        held = await self.collection.find_one({"_id": _id})
        if held is None:
            raise ClaimOutcomeUnknown(_id)
        return bool(held["operation_id"] == operation_id)

    async def held_by_others(self, source: Source, native_ids: Iterable[str], operation_id: str) -> set[str]:
        """Which of `native_ids` other operations claimed."""
        wanted = sorted({claim_id(source, native_id) for native_id in native_ids})
        if not wanted:
            return set()
        cursor = self.collection.find({"_id": {"$in": wanted}})
        return {doc["native_id"] async for doc in cursor if doc["operation_id"] != operation_id}
