"""Claims: which operation target each vendor object a create made or found belongs to.

One document per vendor object a lookup finds, or a create makes where a lookup by likeness could take it
for another's (collection `claims`, `_id` = `"<SOURCE>:<native_id>"`), inserted before the outcome is
journaled. The `_id` is unique, so an object belongs to one operation target only: a
lookup after an interrupted create leaves out the objects other operations claimed, and a claim that
loses to another operation's says so. The objects of outcomes journaled together are claimed together,
in one insert.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pymongo.errors import BulkWriteError, ConnectionFailure

from gateway.model import Source, utcnow
from gateway.store.mongo import Database, utc_collection

#: MongoDB's code for a unique key already taken
_DUPLICATE_KEY = 11000

#: a vendor object, by its source and native id
VendorObject = tuple[Source, str]


def claim_id(source: Source, native_id: str) -> str:
    return f"{source.value}:{native_id}"


class ClaimOutcomeUnknown(Exception):
    """The server could not say whether the claim landed."""


class Claims:
    def __init__(self, db: Database) -> None:
        self.collection = utc_collection(db, "claims")

    async def claim(self, source: Source, native_id: str, operation_id: str) -> bool:
        """Bind the object to `operation_id`'s target; whether it belongs to it now (False: it belongs to
        another operation). Raises `ClaimOutcomeUnknown` when the server cannot say."""
        held = await self.claim_many([(source, native_id)], operation_id)
        if held[(source, native_id)] is None:
            raise ClaimOutcomeUnknown(claim_id(source, native_id))
        return bool(held[(source, native_id)])

    async def claim_many(self, objects: Sequence[VendorObject], operation_id: str) -> dict[VendorObject, bool | None]:
        """Bind each object to `operation_id`'s target, in one unordered insert; for each, whether it
        belongs to it now (False: to another operation; None: the server could not say). A claim that
        lost to an existing one, or whose reply is lost, is read back by its `_id`."""
        if not objects:
            return {}
        now = utcnow()
        docs = {
            claim_id(source, native_id): {
                "_id": claim_id(source, native_id),
                "source": source.value,
                "native_id": native_id,
                "operation_id": operation_id,
                "at": now,
            }
            for source, native_id in objects
        }
        ids = list(docs)
        try:
            await self.collection.insert_many(list(docs.values()), ordered=False)
            return dict.fromkeys(objects, True)
        except BulkWriteError as exc:
            errors = exc.details.get("writeErrors", [])
            if any(error.get("code") != _DUPLICATE_KEY for error in errors):
                raise
            contested = {ids[int(error["index"])] for error in errors}
        except ConnectionFailure:
            contested = set(ids)
        held = {
            doc["_id"]: doc["operation_id"]
            async for doc in self.collection.find({"_id": {"$in": sorted(contested)}}, {"operation_id": True})
        }
        outcome: dict[VendorObject, bool | None] = {}
        for source, native_id in objects:
            _id = claim_id(source, native_id)
            if _id not in contested:
                outcome[(source, native_id)] = True
            elif _id in held:
                outcome[(source, native_id)] = held[_id] == operation_id
            else:
                outcome[(source, native_id)] = None
        return outcome

    async def held_by_others(self, source: Source, native_ids: Iterable[str], operation_id: str) -> set[str]:
        """Which of `native_ids` other operations claimed."""
        wanted = sorted({claim_id(source, native_id) for native_id in native_ids})
        if not wanted:
            return set()
        cursor = self.collection.find({"_id": {"$in": wanted}})
        return {doc["native_id"] async for doc in cursor if doc["operation_id"] != operation_id}
