"""Which vendor modules the gateway speaks to, and how their clients and adapters are built.

Adding a vendor is one module shaped like `loop` (a `CLIENT` class and its `ADAPTERS`) and one line in
`VENDOR_MODULES`.
"""

from __future__ import annotations

from typing import Protocol

import aiohttp

from gateway.model import Source, Vendor
from gateway.settings import Settings, VendorSettings
from gateway.vendors import livepush, loop, streamloop
from gateway.vendors.base import SourceAdapter, VendorClient


class VendorModule(Protocol):
    # Read-only, so that a module's narrower `CLIENT`/`ADAPTERS` types satisfy the protocol.
    @property
    def CLIENT(self) -> type[VendorClient]: ...

    @property
    def ADAPTERS(self) -> tuple[type[SourceAdapter], ...]: ...


VENDOR_MODULES: tuple[VendorModule, ...] = (loop, streamloop, livepush)


def vendor_settings(settings: Settings, vendor: Vendor) -> VendorSettings:
    found: VendorSettings = getattr(settings, vendor.value.lower())
    return found


def build_clients(session: aiohttp.ClientSession, settings: Settings) -> dict[Vendor, VendorClient]:
    """One client per vendor, configured or not: an unconfigured one answers `VendorNotConfigured`."""
    clients: dict[Vendor, VendorClient] = {}
    for module in VENDOR_MODULES:
        vendor = module.CLIENT.vendor
        clients[vendor] = module.CLIENT(session, vendor_settings(settings, vendor))
    return clients


def build_adapters(clients: dict[Vendor, VendorClient]) -> dict[Source, SourceAdapter]:
    adapters: dict[Source, SourceAdapter] = {}
    for module in VENDOR_MODULES:
        for adapter_cls in module.ADAPTERS:
            adapters[adapter_cls.source] = adapter_cls(clients[adapter_cls.source.vendor])
    return adapters
