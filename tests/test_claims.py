"""A vendor object belongs to one operation target only: a lookup after an interrupted create never
adopts an object another operation made, however alike the two creates were."""

from __future__ import annotations

from datetime import timedelta

import pytest

from gateway.model import Source
from gateway.store.journal import TargetRecord, TargetState
from gateway.vendors.base import CreateSpec
from tests.conftest import Sim
from tests.gateway_harness import Gateway
from tests.test_crash_recovery import vendor_objects_titled
from tests.test_mutations import create, create_input

pytestmark = pytest.mark.mongodb

TITLE = "Same title"


async def abandon_livepush_create(gateway: Gateway, operation_id: str) -> None:
    """A create of the same title and category whose runner died before sending it."""
    services = gateway.services
    spec = CreateSpec(title=TITLE, options={"category": "simulcast"})
    body = services.adapters[Source.LIVEPUSH_STREAM].prepare_create(spec, operation_id)
    await services.store.journal.begin(
        operation_id,
        kind="create",
        caller="anonymous",
        runner="a-runner-that-died",
        input={"title": TITLE},
        targets=[TargetRecord(Source.LIVEPUSH_STREAM, TargetState.PENDING, request=body)],
        lease=timedelta(seconds=-5),
    )


async def test_a_lookup_does_not_adopt_another_operations_stream(sim: Sim, gateway: Gateway) -> None:
    made = await create(gateway, create_input(TITLE, livepush={"category": "SIMULCAST"}))
    assert made["data"]["createLiveEvent"]["failures"] == []
    first = await gateway.services.store.journal.get(made["data"]["createLiveEvent"]["operationId"])
    assert first is not None
    await abandon_livepush_create(gateway, "op_same_title")

    assert await gateway.services.operations.reconcile() == 1

    second = await gateway.services.store.journal.get("op_same_title")
    assert second is not None
    first_stream = first.targets[Source.LIVEPUSH_STREAM].native_id
    second_stream = second.targets[Source.LIVEPUSH_STREAM].native_id
    assert second.targets[Source.LIVEPUSH_STREAM].state is TargetState.SUCCEEDED
    assert second_stream != first_stream
    assert await vendor_objects_titled(sim, TITLE) == {"streamloop": 0, "livepush": 2, "loop_session": 0}


async def test_a_lookup_adopts_the_stream_its_own_operation_claimed(sim: Sim, gateway: Gateway) -> None:
    """A runner that died after claiming its stream, before recording it: the stream is found again."""
    await abandon_livepush_create(gateway, "op_claimed")
    services = gateway.services
    operation = await services.store.journal.get("op_claimed")
    assert operation is not None
    adapter = services.adapters[Source.LIVEPUSH_STREAM]
    made = await adapter.create(operation.targets[Source.LIVEPUSH_STREAM].request, idempotency_key="x")
    assert await services.store.claims.claim(Source.LIVEPUSH_STREAM, made.native_id, "op_claimed")

    assert await services.operations.reconcile() == 1

    done = await services.store.journal.get("op_claimed")
    assert done is not None and done.targets[Source.LIVEPUSH_STREAM].native_id == made.native_id
    assert await vendor_objects_titled(sim, TITLE) == {"streamloop": 0, "livepush": 1, "loop_session": 0}
