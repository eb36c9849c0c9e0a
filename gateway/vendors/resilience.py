"""How a vendor client copes with a sick vendor: a circuit breaker, and retries for idempotent calls.

The breaker is small and ours: the asyncio breakers on PyPI either let every waiting call through when
half-open (one probe is the point) or have not been kept up; retries are tenacity's.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from tenacity import RetryCallState, wait_random_exponential

from gateway.errors import (
    CircuitOpen,
    VendorError,
    VendorProtocolError,
    VendorRateLimited,
    VendorTimeout,
    VendorUnavailable,
)
from gateway.model import Vendor
from gateway.settings import VendorSettings


class CircuitState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass(frozen=True, slots=True)
class Admission:
    """Leave from the breaker to make one call; `probe` for the half-open breaker's single probe."""

    probe: bool


CALL = Admission(probe=False)
PROBE = Admission(probe=True)


def counts_against_vendor(error: VendorError) -> bool:
    """Failures that say the vendor is unwell (not a 4xx, which is the vendor working as it should)."""
    return isinstance(error, VendorUnavailable) and not isinstance(error, CircuitOpen)


class CircuitBreaker:
    """Opens after `failures` consecutive failures; after `reset` seconds lets one probe through
    (half-open), closing on its success and opening again on its failure."""

    def __init__(self, vendor: Vendor, failures: int, reset: float, clock: Callable[[], float] = time.monotonic):
        self.vendor = vendor
        self.failures_to_open = failures
        self.reset_after = reset
        self._clock = clock
        self._state = CircuitState.CLOSED
        self._consecutive = 0
        self._opened_at = 0.0
        self._probing = False
        #: called with the new state whenever it changes (metrics)
        self.on_change: Callable[[Vendor, CircuitState], None] | None = None

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.reset_after:
            return CircuitState.HALF_OPEN
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._consecutive

    def retry_in(self) -> float:
        return max(0.0, self._opened_at + self.reset_after - self._clock())

    def admit(self) -> Admission | None:
        """Leave to call the vendor now, or None. The holder reports the call's end with the admission:
        `succeeded`, `failed` or `abandoned`. Half-open, the one admission given is the probe."""
        state = self.state
        if state is CircuitState.CLOSED:
            return CALL
        if state is CircuitState.HALF_OPEN and not self._probing:
            self._probing = True
            self._set(CircuitState.HALF_OPEN)
            return PROBE
        return None

    def check(self) -> Admission:
        admission = self.admit()
        if admission is None:
            raise CircuitOpen(
                self.vendor,
                f"{self.vendor.value} is failing; the gateway is not calling it for now",
                retry_in=self.retry_in() if self._state is CircuitState.OPEN else self.reset_after,
            )
        return admission

    def succeeded(self, admission: Admission = CALL) -> None:
        # Any answer shows the vendor is back, a call from before the opening as much as the probe.
        self._probing = False
        self._consecutive = 0
        self._set(CircuitState.CLOSED)

    def failed(self, admission: Admission = CALL) -> None:
        self._consecutive += 1
        if admission.probe:
            self._probing = False
            self._open()
        elif self._state is CircuitState.CLOSED and self._consecutive >= self.failures_to_open:
            self._open()

    def abandoned(self, admission: Admission = CALL) -> None:
        """The call was cancelled before it told anything. A cancelled probe lets the next caller probe;
        a call from before the opening changes nothing."""
        if admission.probe and self._probing:
            self._probing = False
            self._state = CircuitState.OPEN

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._set(CircuitState.OPEN)

    def _set(self, state: CircuitState) -> None:
        if state is not self._state:
            self._state = state
            if self.on_change:
                self.on_change(self.vendor, state)


#: the longest backoff wait, as a multiple of the first (`retry_backoff`)
BACKOFF_CAP = 8


def is_retryable(error: BaseException, settings: VendorSettings) -> bool:
    """Worth another attempt of an idempotent call: the vendor was unreachable, slow or overloaded.
    A malformed answer is not (it would be malformed again), nor a Retry-After longer than we wait."""
    if isinstance(error, VendorRateLimited):
        return error.retry_after is None or error.retry_after <= settings.retry_after_max
    if isinstance(error, CircuitOpen | VendorProtocolError):
        return False
    return isinstance(error, VendorTimeout | VendorUnavailable)


def backoff(settings: VendorSettings) -> Callable[[RetryCallState], float]:
    """Full jitter, doubling from `retry_backoff`; a 429's Retry-After when it says longer."""
    jitter = wait_random_exponential(multiplier=settings.retry_backoff, max=settings.retry_backoff * BACKOFF_CAP)

    def wait(state: RetryCallState) -> float:
        delay = jitter(state)
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, VendorRateLimited) and error.retry_after is not None:
            delay = max(delay, error.retry_after)
        return float(delay)

    return wait


def worst_case_seconds(settings: VendorSettings, *, idempotent: bool) -> float:
    """The longest one client call can take: every attempt (its wait for a slot, then its exchange) to its
    deadline, and every wait between."""
    attempts = 1 + (settings.retries if idempotent else 0)
    deadline = settings.slot_wait + settings.connect_timeout + settings.read_timeout
    longest_wait = max(settings.retry_backoff * BACKOFF_CAP, settings.retry_after_max)
    return attempts * deadline + (attempts - 1) * longest_wait
