"""What a resolver can reach: the app-wide services and the per-request loaders and deferred errors."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from strawberry.types import Info

from gateway.auth import Principal
from gateway.errors import GatewayError
from gateway.index import EventIndex
from gateway.lifecycle import Lifecycle
from gateway.live import ChangeHub
from gateway.loaders import EventLoader, MissingIds
from gateway.model import Source, Vendor
from gateway.observability import Metrics
from gateway.operations import OperationRunner
from gateway.persisted import PersistedDocuments
from gateway.ratelimit import CallerRateLimit
from gateway.response_cache import Reads, ResponseCache
from gateway.settings import Settings
from gateway.shared import SharedComputations
from gateway.store import Store
from gateway.vendors.base import SourceAdapter, VendorClient


@dataclass(slots=True)
class Services:
    """Built once per application; shared by every request."""

    settings: Settings
    store: Store
    clients: dict[Vendor, VendorClient]
    adapters: dict[Source, SourceAdapter]
    index: EventIndex
    operations: OperationRunner
    lifecycle: Lifecycle
    hub: ChangeHub
    metrics: Metrics
    documents: PersistedDocuments
    #: each caller's budget of vendor calls
    vendor_budget: CallerRateLimit
    #: ids the vendors said they do not have, remembered briefly
    missing: MissingIds
    responses: ResponseCache
    #: computations that equal subscriptions share
    shared: SharedComputations = field(default_factory=SharedComputations)

    def event_loader(self) -> EventLoader:
        """A loader for one request or one operation: its own batches, the replica's memory of missing ids."""
        return EventLoader(self.adapters, self.store, self.fresh_for(), self.metrics, self.missing)

    def fresh_for(self) -> dict[Source, float]:
        return {source: getattr(self.settings, source.vendor.value.lower()).fresh_for for source in self.adapters}


@dataclass(slots=True)
class DeferredError:
    """An error to report beside the data it did not stop (a vendor whose listing failed)."""

    error: GatewayError
    path: list[str | int]


@dataclass(slots=True)
class Context:
    request: web.Request
    response: web.StreamResponse | None
    services: Services
    request_id: str
    #: who is asking; None only on a websocket whose credentials come with `connection_init`
    principal: Principal | None = None
    #: the `connection_init` payload of a websocket
    connection_params: dict[str, Any] | None = None
    #: whether this websocket holds one of its caller's places (given back when it closes)
    socket_open: bool = False
    loader: EventLoader | None = None
    deferred_errors: list[DeferredError] = field(default_factory=list)
    #: what this request read, for the response cache
    reads: Reads = field(default_factory=Reads)

    @property
    def caller(self) -> str:
        """Whom idempotency keys and the journal are kept for."""
        return self.principal.name if self.principal else "anonymous"

    @classmethod
    def build(
        cls, request: web.Request, response: Any, services: Services, request_id: str, principal: Principal | None
    ) -> Context:
        return cls(
            request=request,
            response=response,
            services=services,
            request_id=request_id,
            principal=principal,
            loader=services.event_loader(),
        )


GraphQLInfo = Info[Context, None]
