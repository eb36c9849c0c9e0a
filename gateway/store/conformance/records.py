"""Conformance of the small records' shapes: webhook deliveries and messages (insert on a unique `_id`,
read by `_id` and expiry), source listings (a replacing upsert by `_id`), persisted documents (insert,
then a `$set` of a boolean that a query then matches)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from gateway.model import Source, utcnow
from gateway.store.conformance.registry import Check, check, expect
from gateway.store.documents import DocumentConflict, Documents, sha256_hex
from gateway.store.mongo import Database
from gateway.store.sources import SourceListings
from gateway.store.webhooks import WebhookDeliveries


@check("webhooks.deliveries", "insert_one on a unique _id; find_one({_id, expires_at: {$gt: now}})")
async def deliveries(db: Database) -> None:
    webhooks = WebhookDeliveries(db)
    await webhooks.record("delivery-1")
    await webhooks.record("delivery-10")
    await webhooks.record("delivery-1")  # a replay changes nothing
    expect(await webhooks.seen("delivery-1"), "a recorded delivery is not seen")
    expect(not await webhooks.seen("delivery-2"), "a delivery never recorded is seen")
    count = await webhooks.collection.count_documents({})
    expect(count == 2, f"{count} deliveries stored for two")
    expires = utcnow() + timedelta(minutes=5)
    expect(await webhooks.first_sight("message-1", expires), "a first message was taken for a replay")
    expect(await webhooks.first_sight("message-2", expires), "a neighbour's message was taken for a replay")
    expect(not await webhooks.first_sight("message-1", expires), "a replayed message was taken as new")


@check("sources.record_listing", "replace_one({_id}, {_id, listed_at}, upsert=True), then find_one({_id})")
async def listings(db: Database) -> None:
    sources = SourceListings(db)
    t0 = datetime(2026, 3, 1, 12, 0, 0, 3000, tzinfo=UTC)
    await sources.record_listing(Source.LOOP_SESSION, t0)
    await sources.record_listing(Source.STREAMLOOP_STREAM, t0 + timedelta(milliseconds=1))
    await sources.record_listing(Source.LOOP_SESSION, t0 + timedelta(milliseconds=400))
    loop = await sources.listed_at(Source.LOOP_SESSION)
    streamloop = await sources.listed_at(Source.STREAMLOOP_STREAM)
    expect(loop == t0 + timedelta(milliseconds=400), f"LOOP_SESSION was listed at {loop}")
    expect(streamloop == t0 + timedelta(milliseconds=1), f"a neighbour's listing moved to {streamloop}")
    expect(await sources.listed_at(Source.LIVEPUSH_STREAM) is None, "a source never listed has a listing")
    count = await db["source_listings"].count_documents({})
    expect(count == 2, f"{count} listings stored for two sources (an upsert inserted under another _id)")


@check(
    "documents.put", "insert_one; update_one({_id, sha256}, $set trusted) rewritten whole; find_one({sha256, trusted})"
)
async def documents(db: Database) -> None:
    store = Documents(db)
    text = "{ liveEvents(first: 1) { totalCount } }"
    await store.put("doc-registered", text, trusted=False)
    await store.put("doc-other", "{ vendors { vendor } }", trusted=True)
    found = await store.by_text_hash(sha256_hex(text), trusted=True)
    expect(found is None, f"an untrusted document was found as trusted: {found}")
    await store.put("doc-registered", text, trusted=True)
    found = await store.by_text_hash(sha256_hex(text), trusted=True)
    expect(found is not None and found.id == "doc-registered", f"the vouched-for document was found as {found}")
    try:
        await store.put("doc-registered", "{ other }", trusted=True)
    except DocumentConflict:
        pass
    else:
        expect(False, "a second text under a known id was stored")
    # One stored before documents had revisions: `{rev: null}` matches its missing field.
    legacy = "{ legacy }"
    await db["documents"].insert_one({"_id": "doc-legacy", "text": legacy, "sha256": sha256_hex(legacy)})
    await store.put("doc-legacy", legacy, trusted=True)
    found = await store.by_text_hash(sha256_hex(legacy), trusted=True)
    expect(found is not None and found.id == "doc-legacy", "a document stored without a revision was not vouched for")
    other = await store.by_id("doc-other")
    expect(other is not None and other.trusted and other.text == "{ vendors { vendor } }", "a neighbour changed")


CHECKS: tuple[Check, ...] = (deliveries, listings, documents)
