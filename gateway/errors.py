"""The gateway's exceptions: a small named hierarchy, each error knowing its GraphQL code and vendor.

Shaped after httpx: callers catch the family they care about (`VendorError`, `VendorUnavailable`)
and the GraphQL layer renders `code`, `vendor` and `retryable` into `extensions`.
"""

from __future__ import annotations

from typing import Any

from gateway.model import Vendor


class GatewayError(Exception):
    """Base of every error the gateway reports to a caller."""

    code = "INTERNAL"
    retryable = False
    #: seconds after which trying again may succeed, where the error knows
    retry_after: float | None = None

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def extensions(self) -> dict[str, Any]:
        ext: dict[str, Any] = {"code": self.code, "retryable": self.retryable}
        if self.retry_after is not None:
            ext["retryAfter"] = self.retry_after
        return ext


class BadUserInput(GatewayError):
    code = "BAD_USER_INPUT"

    def __init__(self, message: str, *, field: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.field = field
        self.reason = reason

    def extensions(self) -> dict[str, Any]:
        ext = super().extensions()
        if self.field:
            ext["field"] = self.field
        if self.reason:
            ext["reason"] = self.reason
        return ext


class VendorError(GatewayError):
    """Something a vendor did, or failed to do. Knows the vendor, HTTP status and the vendor's own words."""

    code = "VENDOR_UNAVAILABLE"

    def __init__(
        self,
        vendor: Vendor,
        message: str,
        *,
        status: int | None = None,
        vendor_code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.vendor = vendor
        self.status = status
        self.vendor_code = vendor_code

    def extensions(self) -> dict[str, Any]:
        ext = super().extensions()
        ext["vendor"] = self.vendor.value
        if self.status is not None:
            ext["vendorStatus"] = self.status
        if self.vendor_code:
            ext["vendorCode"] = self.vendor_code
        return ext

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(vendor={self.vendor.value}, status={self.status}, "
            f"vendor_code={self.vendor_code!r}, message={self.message!r})"
        )


class VendorUnavailable(VendorError):
    """Timeout, connection failure, 5xx, or an answer that does not parse: worth retrying later."""

    code = "VENDOR_UNAVAILABLE"
    retryable = True


class VendorTimeout(VendorUnavailable):
    pass


class VendorProtocolError(VendorUnavailable):
    """The vendor answered something that is not its documented contract (bad JSON, missing fields)."""


class CircuitOpen(VendorUnavailable):
    """The vendor failed too often lately; the gateway does not call it until the breaker lets a probe by."""

    def __init__(self, vendor: Vendor, message: str, *, retry_in: float) -> None:
        super().__init__(vendor, message)
        self.retry_in = retry_in
        self.retry_after = round(retry_in, 3)

    def extensions(self) -> dict[str, Any]:
        return {**super().extensions(), "circuit": "open"}


class VendorNotConfigured(VendorError):
    """The gateway has no usable configuration or credentials for this vendor, or the vendor's own
    upstream (Loop's streaming provider) is not configured."""

    code = "VENDOR_NOT_CONFIGURED"


class VendorAuthError(VendorNotConfigured):
    """The vendor refused the gateway's credentials (401)."""


class VendorRejected(VendorError):
    """A 4xx with the vendor's message: the request itself was wrong for the vendor."""

    code = "VENDOR_REJECTED"


class VendorNotFound(VendorRejected):
    code = "NOT_FOUND"


class VendorConflict(VendorRejected):
    """409: the object is in a state that does not allow the move (Streamloop's illegal transitions,
    Loop's double registration)."""


class VendorPreconditionFailed(VendorRejected):
    """412: Loop's session is full or not open for registration."""


class IdempotencyKeyReused(VendorRejected):
    """422: the same idempotency key was sent with a different body."""


class VendorRateLimited(VendorError):
    code = "RATE_LIMITED"
    retryable = True

    def __init__(self, vendor: Vendor, message: str, *, retry_after: float | None = None, **kw: Any) -> None:
        super().__init__(vendor, message, **kw)
        self.retry_after = retry_after


class VendorBudgetSpent(VendorError):
    """The vendor's budget of outbound requests (all replicas together) is spent for now; nothing was sent."""

    code = "RATE_LIMITED"
    retryable = True

    def __init__(self, vendor: Vendor, message: str, *, retry_after: float) -> None:
        super().__init__(vendor, message)
        self.retry_after = retry_after


class VendorBusy(VendorError):
    """Every slot for calls to the vendor stayed taken for as long as a call may wait: the gateway's own
    crowd, not the vendor's failure (the breaker and the vendor's health do not count it)."""

    code = "VENDOR_UNAVAILABLE"
    retryable = True


class VendorCallsSpent(VendorError):
    """The caller has made as many vendor calls as its budget allows for now; nothing was sent."""

    code = "RATE_LIMITED"
    retryable = True

    def __init__(self, vendor: Vendor, message: str, *, retry_after: float) -> None:
        super().__init__(vendor, message)
        self.retry_after = retry_after


class UnsupportedByVendor(VendorError):
    code = "UNSUPPORTED_BY_VENDOR"


class OutcomeUnknown(VendorError):
    """A create was interrupted, and the vendor gives no way to learn whether it made the object."""

    code = "OUTCOME_UNKNOWN"


class OperationIncomplete(GatewayError):
    """An idempotent request's first attempt died before it began; the client should send it again."""

    code = "INTERNAL"
    retryable = True


class StoreUnavailable(GatewayError):
    """MongoDB did not answer within the store timeout (or is known not to, from a recent failure): what
    needs the store is refused at once rather than left to hang; worth trying again shortly."""

    code = "STORE_UNAVAILABLE"
    retryable = True


class NotFound(GatewayError):
    code = "NOT_FOUND"


class Unauthenticated(GatewayError):
    """Missing or bad credentials (HTTP 401)."""

    code = "UNAUTHENTICATED"


class RateLimited(GatewayError):
    """The caller sent more requests than the per-caller limit allows (HTTP 429)."""

    code = "RATE_LIMITED"
    retryable = True

    def __init__(self, message: str, *, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after
