"""What one caller may use: requests per moving window (in the `limits` notation, `1200/minute`), vendor
calls per window, and websockets open at once."""

from __future__ import annotations

import math
import time
from collections import Counter
from collections.abc import Callable, Iterator

from limits import RateLimitItem, parse
from limits.strategies import MovingWindowRateLimiter
from strawberry.extensions import SchemaExtension

from gateway.auth import Principal
from gateway.errors import GatewayError, RateLimited, VendorCallsSpent
from gateway.model import Vendor
from gateway.shared_limits import SharedLimit
from gateway.store.ratelimits import SharedWindows
from gateway.vendors.base import vendor_call_spender
from gateway.window_storage import LoopMemoryStorage


class CallerRateLimit:
    """A moving window per caller in each replica and, once `share`d, the same limit across all replicas."""

    def __init__(self, limit: str, counted: str = "requests") -> None:
        self._item: RateLimitItem | None = parse(limit) if limit else None
        self._limiter = MovingWindowRateLimiter(LoopMemoryStorage())
        #: what is counted, for the message (`requests`, `vendor calls`)
        self.counted = counted
        self._shared: SharedLimit | None = None
        self._windows: SharedWindows | None = None

    def configure(self, limit: str) -> None:
        """Another limit from now on (settings reloaded); what each caller sent in the window still counts."""
        self._item = parse(limit) if limit else None

    def share(self, windows: SharedWindows) -> None:
        """Count across every replica from now on, in MongoDB."""
        self._windows = windows
        self._shared = SharedLimit(windows, str(self._item)) if self._item is not None else None

    async def admit(self, principal: Principal) -> None:
        """`check`, then the same limit across all replicas (when shared)."""
        self.check(principal)
        if self._item is None or self._shared is None or self._windows is None:
            return
        if str(self._shared.item) != str(self._item):  # the limit was configured anew
            self._shared = SharedLimit(self._windows, str(self._item))
        verdict = await self._shared.take(f"caller:{principal.name}")
        if not verdict.allowed:
            retry_after = max(1, math.ceil(verdict.retry_after))
            raise RateLimited(
                f"more than {self._item} {self.counted} across the gateway; try again in {retry_after} s",
                retry_after=retry_after,
            )

    def check(self, principal: Principal) -> None:
        """This replica's own count: a caller over the limit here is over it everywhere."""
        if self._item is None:
            return
        if not self._limiter.hit(self._item, principal.name):
            stats = self._limiter.get_window_stats(self._item, principal.name)
            retry_after = max(1, math.ceil(stats.reset_time - time.time()))
            raise RateLimited(
                f"more than {self._item} {self.counted}; try again in {retry_after} s", retry_after=retry_after
            )


class TooManySockets(GatewayError):
    code = "RATE_LIMITED"
    retryable = True


class CallerSockets:
    """The websockets each caller holds open on this replica, up to `limit` each."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._open: Counter[str] = Counter()

    def open(self, principal: Principal) -> None:
        if self._open[principal.name] >= self.limit:
            raise TooManySockets(f"at most {self.limit} sockets per caller are open at once; close one first")
        self._open[principal.name] += 1

    def held(self, name: str) -> int:
        """How many the caller called `name` holds open now."""
        return self._open[name]

    def close(self, principal: Principal) -> None:
        self._open[principal.name] -= 1
        if self._open[principal.name] <= 0:
            del self._open[principal.name]


def vendor_call_spender_for(budget: CallerRateLimit, principal: Principal) -> Callable[[Vendor], None]:
    def spend(vendor: Vendor) -> None:
        try:
            budget.check(principal)
        except RateLimited as exc:
            raise VendorCallsSpent(vendor, exc.message, retry_after=exc.retry_after or 1) from exc

    return spend


class VendorCallBudget(SchemaExtension):
    """Charges each vendor call an operation makes to its caller's budget (`LIMITS__VENDOR_CALL_BUDGET`),
    over every transport alike; a call beyond it fails as RATE_LIMITED without being sent."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context.context
        principal = getattr(context, "principal", None)
        services = getattr(context, "services", None)
        if principal is None or services is None:
            yield
            return
        token = vendor_call_spender.set(vendor_call_spender_for(services.vendor_budget, principal))
        try:
            yield
        finally:
            try:
                vendor_call_spender.reset(token)
            except ValueError:  # the operation ended in another context (a subscription's generator)
                vendor_call_spender.set(None)
