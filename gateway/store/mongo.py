"""MongoDB plumbing every store module shares, written for the subset that behaves the same on MongoDB
and on the embedded nx-27017 server."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import bson
from bson.codec_options import CodecOptions
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import ConnectionFailure, OperationFailure

Document = dict[str, Any]
Database = AsyncDatabase[Document]
Collection = AsyncCollection[Document]
IndexKeys = Sequence[tuple[str, int]]

# Decoding with an explicit zone makes every datetime the store hands out aware and in `datetime.UTC`,
# whatever `tz_aware` setting the caller's client was built with.
_UTC_CODEC: CodecOptions[Document] = CodecOptions(document_class=dict, tz_aware=True, tzinfo=UTC)

# nx-27017 applies a plain `$set` to an existing document through SQLite's JSON functions, which store
# a datetime as a text "YYYY-MM-DD HH:MM:SS" and a boolean as 0/1; dates stored that way no longer
# compare with dates in queries. An update that also carries an operator its SQL path declines is applied
# by rewriting the whole document, which keeps BSON types. `$pullAll` on a field that never exists is
# that operator: on MongoDB it changes nothing (there is no array to cull and `$pullAll` creates none).
FORCE_DOCUMENT_REWRITE: Document = {"$pullAll": {"_absent_array": []}}

# MongoDB's code when an index with the same keys already exists under another name.
_INDEX_OPTIONS_CONFLICT = 85


def utc_collection(db: Database, name: str) -> Collection:
    return db.get_collection(name, codec_options=_UTC_CODEC)


def as_read_back(document: Document) -> Document:
    """`document` as a read from a `utc_collection` gives it back once stored (BSON keeps datetimes to the
    millisecond)."""
    return bson.decode(bson.encode(document), codec_options=_UTC_CODEC)


async def ensure_index(collection: Collection, keys: IndexKeys, **options: Any) -> None:
    """Create the index unless one with the same keys exists, whatever its name.

    Names are not portable: nx-27017 lists its indexes under names of its own, and an operator may have
    created the index by hand. A concurrent creator under another name is fine too.
    """
    wanted = [(field, int(direction)) for field, direction in keys]
    async for index in await collection.list_indexes():
        if [(field, int(direction)) for field, direction in index["key"].items()] == wanted:
            return
    try:
        await collection.create_index(wanted, **options)
    except OperationFailure as exc:
        if exc.code != _INDEX_OPTIONS_CONFLICT:
            raise


def to_micros(moment: datetime) -> int:
    """A moment as integer microseconds since the epoch: what the store compares and orders by, since
    servers differ in how they compare datetimes (nx-27017 compares them to the second)."""
    aware = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment
    return (aware - _EPOCH) // timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def micros_of(doc: Document, field: str, dated: str) -> int:
    """`doc[field]`, integer microseconds, or its date `doc[dated]` in them for a document written before
    it kept `field` (0 when it has neither)."""
    value = doc.get(field)
    if value is not None:
        return int(value)
    moment = doc.get(dated)
    return to_micros(moment) if isinstance(moment, datetime) else 0


async def compare_and_swap(collection: Collection, _id: Any, rev: int | None, changes: Document) -> bool:
    """Set `changes` on document `_id` if its revision is still `rev`, moving it to `rev + 1`; whether it did.
    (`rev` None: a document stored before it had a revision; `{rev: null}` matches it.)

    The filter is `_id` and an integer revision, by equality: the one conditional write every server
    means the same by. Each swap writes a token of its own, so that when the reply is lost the outcome is
    read back by `_id`: the swap landed exactly when the document holds the token. (A swap whose reply was
    lost may still land after the read; it then counts as lost, and the document's revision has moved on,
    which every writer after it sees.)
    """
    token = new_write_token()
    update: Document = {"$set": {**changes, "rev": (rev or 0) + 1, "write_token": token}, **FORCE_DOCUMENT_REWRITE}
    try:
        result = await collection.update_one({"_id": _id, "rev": rev}, update)
    except ConnectionFailure:
        return await written_by(collection, _id, token)
    return result.matched_count == 1


async def written_by(collection: Collection, _id: Any, token: str) -> bool:
    """Whether document `_id` holds the write token `token`: an unknown outcome read back."""
    doc = await collection.find_one({"_id": _id}, {"write_token": True})
    return doc is not None and doc.get("write_token") == token


def new_write_token() -> str:
    return uuid.uuid4().hex
