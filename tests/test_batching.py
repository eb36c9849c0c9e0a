"""One query's events cost one cache read, whatever their sources: counted in MongoDB commands."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

from pymongo import monitoring

from gateway.ids import encode_global_id
from gateway.model import Source
from gateway.settings import Settings
from tests.conftest import Sim
from tests.test_read_path import reset_counts, seed

FOUR = """query($ids: [ID!]!) { nodes(ids: $ids) { id ... on LiveEvent { title status } } }"""


class EventsCommands(monitoring.CommandListener):
    """The commands sent to one database's `events` collection, by name."""

    def __init__(self, database: str) -> None:
        self.database = database
        self.counts: Counter[str] = Counter()

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if event.database_name == self.database and event.command.get(event.command_name) == "events":
            self.counts[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


async def test_four_sources_in_one_query_cost_one_read_and_one_write(
    sim: Sim, make_gateway: Callable[..., Any], settings_for: Callable[..., Settings]
) -> None:
    ids = await seed(sim, 3)
    await reset_counts(sim)
    vendors = settings_for()
    fresh = {
        name: getattr(vendors, name).model_copy(update={"fresh_for": 3600})
        for name in ("loop", "streamloop", "livepush")
    }
    global_ids = [encode_global_id(source, ids[source][0]) for source in Source]
    database = f"test_batching_{uuid.uuid4().hex[:8]}"
    listener = EventsCommands(database)
    # A listener registered globally reaches the clients made afterwards, the gateway's among them.
    monitoring.register(listener)
    async with make_gateway(mongodb_database=database, **fresh) as gw:
        listener.counts.clear()  # the indexes made at start
        cold = await gw.query(FOUR, {"ids": global_ids})
        assert [node["id"] for node in cold["data"]["nodes"]] == global_ids
        # One cache read for all four; one read of what they were (for the change feed) and one bulk
        # write for what the vendors answered.
        assert listener.counts == {"find": 2, "update": 1}
        assert await sim.vendor_requests() == 4
        listener.counts.clear()
        warm = await gw.query(FOUR, {"ids": global_ids})
        assert warm["data"] == cold["data"]
        assert listener.counts == {"find": 1}
        assert await sim.vendor_requests() == 4
