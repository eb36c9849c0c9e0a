"""The queries a benchmark sends, to the gateway and the naive baseline (one schema) and to the peer.

The peer's schema is the vendors' own, one root field per vendor operation (`Loop_getCall`, ...): the
equivalent of reading one event by id is the vendor's "get one" operation, and of one event from each source
in one query, the four "get one" operations side by side. Each selects the same facts: id, title, status,
scheduled start and whether it is live, in the vendor's words.
"""

from __future__ import annotations

EVENT_FIELDS = "fragment E on LiveEvent { id source status vendorStatus title scheduledStart isLive }"

ONE_EVENT = "query One($id: ID!) { liveEvent(id: $id) { ...E } } " + EVENT_FIELDS

FOUR_SOURCES = (
    "query Four($call: ID!, $session: ID!, $stream: ID!, $push: ID!) {"
    " call: liveEvent(id: $call) { ...E } session: liveEvent(id: $session) { ...E }"
    " stream: liveEvent(id: $stream) { ...E } push: liveEvent(id: $push) { ...E } } " + EVENT_FIELDS
)

LIST_100 = "query List { liveEvents(first: 100) { edges { node { ...E } } pageInfo { hasNextPage endCursor } } } "
LIST_100 += EVENT_FIELDS

NODES = "query Nodes($ids: [ID!]!) { nodes(ids: $ids) { id ... on LiveEvent { ...E } } } " + EVENT_FIELDS

PEER_ONE_EVENT = """query One($id: String!) {
  Loop_getCall(id: $id) { ... on Loop_CallWithLive { id title status scheduled_at live { is_live } } }
}"""

PEER_FOUR_SOURCES = """query Four($call: String!, $session: String!, $stream: String!, $push: String!) {
  call: Loop_getCall(id: $call) { ... on Loop_CallWithLive { id title status scheduled_at live { is_live } } }
  session: Loop_getSession(id: $session) { ... on Loop_Session { id title status scheduled_at } }
  stream: Streamloop_getStream(id: $stream) { ... on Streamloop_Stream { id name state scheduleStartAt } }
  push: Livepush_getStream(streamId: $push) { ... on Livepush_Stream { id createdAt metadata { name category } } }
}"""

#: a dashboard back-end's poll: one page of events and the counts beside it
DASHBOARD = (
    "query Dashboard { liveEvents(first: 20) { edges { node { ...E } } }"
    " liveEventStats { total liveNow byStatus { status count } bySource { source count } startingSoon } } "
    + EVENT_FIELDS
)
