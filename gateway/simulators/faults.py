"""Fault knobs, per vendor: what a misbehaving vendor does instead of (or on top of) answering."""

from __future__ import annotations

import asyncio
import contextlib
import math
import random
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Literal, get_args

VENDORS = ("loop", "streamloop", "livepush")
ProviderMode = Literal["ok", "not_configured", "failing"]


class InvalidFaults(ValueError):
    """A `/_sim/faults` body that names an unknown vendor or knob, or a value out of range."""


@dataclass(frozen=True)
class VendorFaults:
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    error_rate: float = 0.0
    error_status: int = 503
    error_burst: int = 0
    hang: bool = False
    malformed_json: bool = False
    rate_limited: float | None = None
    unauthorized: bool = False
    reject_status: int | None = None  # every request answered with this 4xx, in the vendor's error shape
    provider: ProviderMode = "ok"  # Loop only: the streaming provider behind calls

    def as_json(self) -> dict[str, Any]:
        """The knobs that differ from a healthy vendor."""
        healthy = asdict(VendorFaults())
        return {name: value for name, value in asdict(self).items() if value != healthy[name]}

    @property
    def touches_traffic(self) -> bool:
        """Whether any knob acts on requests in general (the provider knob acts inside Loop's handlers)."""
        return replace(self, provider="ok") != VendorFaults()


def parse_vendor_faults(vendor: str, body: Any) -> VendorFaults:
    if not isinstance(body, dict):
        raise InvalidFaults(f"{vendor}: faults must be an object")
    known = {f.name for f in fields(VendorFaults)}
    unknown = sorted(set(body) - known)
    if unknown:
        raise InvalidFaults(f"{vendor}: unknown knob(s) {', '.join(unknown)}")
    if "provider" in body and vendor != "loop":
        raise InvalidFaults(f"{vendor}: provider is a Loop knob")
    values: dict[str, Any] = {}
    for name in ("latency_ms", "jitter_ms"):
        if name in body:
            values[name] = _number(vendor, name, body[name], minimum=0.0)
    if "error_rate" in body:
        values["error_rate"] = _number(vendor, "error_rate", body["error_rate"], minimum=0.0, maximum=1.0)
    if "error_status" in body:
        status = body["error_status"]
        if not isinstance(status, int) or isinstance(status, bool) or not 500 <= status <= 599:
            raise InvalidFaults(f"{vendor}.error_status: must be an integer from 500 to 599")
        values["error_status"] = status
    if body.get("reject_status") is not None:
        status = body["reject_status"]
        if not isinstance(status, int) or isinstance(status, bool) or not 400 <= status <= 499:
            raise InvalidFaults(f"{vendor}.reject_status: must be an integer from 400 to 499")
        values["reject_status"] = status
    if "error_burst" in body:
        burst = body["error_burst"]
        if not isinstance(burst, int) or isinstance(burst, bool) or burst < 0:
            raise InvalidFaults(f"{vendor}.error_burst: must be a whole number of requests")
        values["error_burst"] = burst
    for name in ("hang", "malformed_json", "unauthorized"):
        if name in body:
            if not isinstance(body[name], bool):
                raise InvalidFaults(f"{vendor}.{name}: must be a boolean")
            values[name] = body[name]
    if body.get("rate_limited") is not None:
        values["rate_limited"] = _number(vendor, "rate_limited", body["rate_limited"], minimum=0.0)
    if "provider" in body:
        if body["provider"] not in get_args(ProviderMode):
            raise InvalidFaults(f"loop.provider: must be one of {', '.join(get_args(ProviderMode))}")
        values["provider"] = body["provider"]
    return VendorFaults(**values)


def _number(vendor: str, name: str, value: Any, *, minimum: float, maximum: float = math.inf) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not minimum <= value <= maximum:
        bounds = f"from {minimum:g} to {maximum:g}" if maximum != math.inf else f"of at least {minimum:g}"
        raise InvalidFaults(f"{vendor}.{name}: must be a number {bounds}")
    return float(value)


class FaultBook:
    """The faults in force, and the means to wake requests that a fault is holding."""

    def __init__(self, rng: random.Random | None = None) -> None:
        self.rng = rng or random.Random()
        self._faults: dict[str, VendorFaults] = {vendor: VendorFaults() for vendor in VENDORS}
        self._burst_left: dict[str, int] = dict.fromkeys(VENDORS, 0)
        self._release = asyncio.Event()

    def current(self, vendor: str) -> VendorFaults:
        return self._faults[vendor]

    def set(self, vendor: str, faults: VendorFaults) -> None:
        self._faults[vendor] = faults
        self._burst_left[vendor] = faults.error_burst
        self.release_held()

    def clear(self) -> None:
        for vendor in VENDORS:
            self.set(vendor, VendorFaults())

    def as_json(self) -> dict[str, dict[str, Any]]:
        return {
            vendor: faults.as_json() | ({"error_burst": self._burst_left[vendor]} if faults.error_burst else {})
            for vendor, faults in self._faults.items()
        }

    def take_burst(self, vendor: str) -> bool:
        """Whether this request is one of the burst that must fail (and count it if so)."""
        if self._burst_left[vendor] <= 0:
            return False
        self._burst_left[vendor] -= 1
        return True

    def release_held(self) -> None:
        """Wake every request held by latency or `hang`: the faults changed, were reset, or we shut down."""
        self._release.set()
        self._release = asyncio.Event()

    async def hold(self, seconds: float) -> bool:
        """Wait up to `seconds`; True when released early."""
        release = self._release
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await release.wait()
        # Asked, not taken from the wait: a release due in the turn of the loop that ends the wait with
        # its timeout is one too, and the next hold waits on a new event that it would never set.
        return release.is_set()
