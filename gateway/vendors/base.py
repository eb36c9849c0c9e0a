"""What every vendor adapter shares: the HTTP client base and the per-source adapter contract.

A vendor module (`loop`, `streamloop`, `livepush`) has the same shape each time: a `VendorClient`
subclass that speaks the vendor's HTTP API, pydantic wire models that validate what it answers, a
`normalize()` per source into `gateway.model.Event`, and one `SourceAdapter` per source it serves.
"""

from __future__ import annotations

import asyncio
import math
import re
import time
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, TypeVar
from urllib.parse import quote

import aiohttp
import orjson
import pydantic
from multidict import CIMultiDictProxy
from tenacity import AsyncRetrying, retry_if_exception, stop_after_attempt
from yarl import URL

from gateway.errors import (
    UnsupportedByVendor,
    VendorAuthError,
    VendorBudgetSpent,
    VendorBusy,
    VendorConflict,
    VendorError,
    VendorNotConfigured,
    VendorNotFound,
    VendorPreconditionFailed,
    VendorProtocolError,
    VendorRateLimited,
    VendorRejected,
    VendorTimeout,
    VendorUnavailable,
)
from gateway.model import Event, Source, Vendor
from gateway.settings import VendorSettings
from gateway.shared_limits import SharedLimit
from gateway.tracing import vendor_headers
from gateway.vendors.dedup import InFlight, read_key
from gateway.vendors.resilience import CircuitBreaker, backoff, counts_against_vendor, is_retryable

M = TypeVar("M", bound=pydantic.BaseModel)


def _as_utc(value: datetime) -> datetime:
    # A vendor timestamp without an offset is read as UTC; every datetime leaving a wire model is
    # aware and in `datetime.UTC`, whatever zone object the parser produced.
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


#: A vendor timestamp in a wire model: ISO-8601 in, timezone-aware UTC out.
UtcDateTime = Annotated[datetime, pydantic.AfterValidator(_as_utc)]


@dataclass(slots=True)
class VendorResponse:
    status: int
    data: Any
    headers: CIMultiDictProxy[str]


@dataclass(slots=True, frozen=True)
class Call:
    method: str
    route: str
    url: URL
    body: bytes | None
    params: Mapping[str, str | int] | None
    headers: dict[str, str]


#: (vendor, method, route template, outcome: the HTTP status or `timeout`/`unreachable`, seconds)
CallObserver = Callable[[Vendor, str, str, str, float], None]
#: (vendor, method, route template) of a read that shared an identical one in flight instead of being sent
SavedCallObserver = Callable[[Vendor, str, str], None]

IDEMPOTENCY_HEADER = "Idempotency-Key"

#: spends one vendor call of the budget of the caller whose operation is running (raising `VendorCallsSpent`
#: when it is spent); unset for the gateway's own calls (the index refresher, the reconciler)
vendor_call_spender: ContextVar[Callable[[Vendor], None] | None] = ContextVar("vendor_call_spender", default=None)


def _outcome_label(error: VendorError) -> str:
    if isinstance(error, VendorProtocolError):
        return "malformed"
    if error.status is not None:
        return str(error.status)
    if isinstance(error, VendorTimeout):
        return "timeout"
    return "unreachable"


@dataclass(slots=True)
class VendorHealthRecord:
    last_ok_at: float | None = None
    last_error: VendorError | None = None
    last_error_at: float | None = None


class VendorClient:
    """One vendor's HTTP API over the process-wide aiohttp session.

    Subclasses set `vendor`, `auth_headers()` and `error_for()` (each vendor words its errors its own
    way); everything else (timeouts, the concurrency bound, JSON, mapping transport failures) is here.
    """

    vendor: ClassVar[Vendor]
    #: what the vendor's ids look like: a path value that does not fit is not sent (see `request`)
    native_id: ClassVar[re.Pattern[str]]

    def __init__(self, session: aiohttp.ClientSession, settings: VendorSettings) -> None:
        self.session = session
        self.settings = settings
        self.health = VendorHealthRecord()
        self._slots = asyncio.Semaphore(settings.max_concurrency)
        # `total` bounds the whole exchange: a vendor that trickles bytes never resets it.
        self._deadline = settings.connect_timeout + settings.read_timeout
        self._timeout = aiohttp.ClientTimeout(
            total=settings.connect_timeout + settings.read_timeout,
            connect=settings.connect_timeout,
            sock_read=settings.read_timeout,
        )
        self._base = (settings.base_url or "").rstrip("/")
        self._backoff = backoff(settings)
        self.breaker = CircuitBreaker(self.vendor, settings.breaker_failures, settings.breaker_reset)
        #: told of every call that reached the vendor (metrics)
        self.observer: CallObserver | None = None
        #: the vendor's budget of outbound requests, shared by every replica (`settings.budget`)
        self.budget: SharedLimit | None = None
        #: the reads in flight, shared by identical reads meanwhile
        self.in_flight: InFlight[VendorResponse] = InFlight()
        #: told of every read that was not sent because an identical one was in flight (metrics)
        self.saved_observer: SavedCallObserver | None = None

    @property
    def configured(self) -> bool:
        return self.settings.configured

    def auth_headers(self) -> dict[str, str]:
        token = self.settings.token
        return {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}

    async def request(
        self,
        method: str,
        route: str,
        *,
        path: Mapping[str, str] | None = None,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> VendorResponse:
        """One call to the vendor. `route` is the path template (`/streams/{id}`), filled from `path`.

        A read, or a write that carries an `Idempotency-Key`, is tried again (with backoff) when the vendor
        was unreachable, slow or overloaded; any other write is sent once, since sending it again could
        make a second object. The circuit breaker refuses calls, without sending them, while it is open.
        """
        call, identity = self._build(method, route, path, json, params, headers)
        if method == "GET" and self.settings.deduplicate_reads:
            key = read_key(method, str(call.url), params, identity)
            shared, joined = self.in_flight.share(key, lambda: self._send(call))
            if joined and self.saved_observer is not None:
                self.saved_observer(self.vendor, method, route)
            return await shared
        return await self._send(call)

    def prepare(
        self,
        method: str,
        route: str,
        *,
        path: Mapping[str, str] | None = None,
        json: Any = None,
        params: Mapping[str, str | int] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Call:
        """The call `request` makes, built (URL, headers, serialized body) but not sent: `send` sends it."""
        return self._build(method, route, path, json, params, headers)[0]

    def _build(
        self,
        method: str,
        route: str,
        path: Mapping[str, str] | None,
        json: Any,
        params: Mapping[str, str | int] | None,
        headers: Mapping[str, str] | None,
    ) -> tuple[Call, dict[str, str]]:
        if not self.configured:
            raise VendorNotConfigured(self.vendor, f"{self.vendor.value} is not configured")
        url = URL(self._base + (route.format_map(self._path_values(path)) if path else route), encoded=True)
        # What identifies a read (credentials and the caller's own headers) is kept apart from what only
        # traces it, so that two requests' reads of one object are the same read.
        identity = self.auth_headers()
        if headers:
            identity.update(headers)
        all_headers = vendor_headers()
        all_headers.update(identity)
        body = None
        if json is not None:
            body = orjson.dumps(json)
            all_headers["Content-Type"] = "application/json"
        return Call(method, route, url, body, params, all_headers), identity

    async def send(self, call: Call) -> VendorResponse:
        """Send a call built by `prepare` (a write: reads go through `request`, which shares them)."""
        return await self._send(call)

    async def _send(self, call: Call) -> VendorResponse:
        idempotent = call.method == "GET" or IDEMPOTENCY_HEADER in call.headers
        if not idempotent or self.settings.retries == 0:
            return await self._attempt(call)
        # The first attempt is made before any retry loop is set up: nearly every call succeeds at once, and
        # tenacity's loop costs more CPU per call than the exchange's own bookkeeping. Should it fail in a way
        # worth retrying, the loop starts from that failure, as if it had made the attempt itself.
        try:
            return await self._attempt(call)
        except Exception as error:
            if not is_retryable(error, self.settings):
                raise
            first_failure: Exception | None = error

        async def attempt() -> VendorResponse:
            nonlocal first_failure
            if first_failure is not None:
                failure, first_failure = first_failure, None
                raise failure
            return await self._attempt(call)

        retrying = AsyncRetrying(
            stop=stop_after_attempt(1 + self.settings.retries),
            wait=self._backoff,
            retry=retry_if_exception(lambda error: is_retryable(error, self.settings)),
            reraise=True,
        )
        return await retrying(attempt)

    def is_native_id(self, value: str) -> bool:
        """Whether `value` looks like one of the vendor's ids (a value that does not, it cannot have)."""
        return self.native_id.fullmatch(value) is not None

    def _path_values(self, path: Mapping[str, str]) -> dict[str, str]:
        """Each value as one escaped path segment, once it is known to be an id of the vendor's.

        A value that cannot be one of the vendor's ids (`..`, `me`, anything with a `/`) could only reach
        another route, with the gateway's credentials: the vendor cannot have such an object, so the call
        is answered as the vendor would answer a missing one, without being sent, and is nobody's failure.
        """
        for value in path.values():
            if not self.is_native_id(value):
                raise VendorNotFound(self.vendor, f"{self.vendor.value} has no object {value!r} (not one of its ids)")
        return {key: segment(value) for key, value in path.items()}

    async def _attempt(self, call: Call) -> VendorResponse:
        spend = vendor_call_spender.get()
        if spend is not None:
            spend(self.vendor)  # the caller's budget of vendor calls; nothing is sent beyond it
        if self.budget is not None:
            # The vendor's own quota, shared by every replica: a call beyond it is never sent, and is
            # nobody's failure (neither the breaker nor a retry sees it).
            verdict = await self.budget.take(f"vendor:{self.vendor.value}")
            if not verdict.allowed:
                retry_after = max(1, math.ceil(verdict.retry_after))
                spent = f"{self.vendor.value}'s budget of {self.budget.item} requests is spent"
                message = f"{spent}; try again in {retry_after} s"
                raise VendorBudgetSpent(self.vendor, message, retry_after=retry_after)
        admission = self.breaker.check()
        try:
            await self._take_slot()
        except BaseException:
            self.breaker.abandoned(admission)
            raise
        try:
            started = time.perf_counter()
            try:
                response = await self._exchange(call)
            except VendorError as error:
                self._observe(call, _outcome_label(error), started)
                if counts_against_vendor(error):
                    self.breaker.failed(admission)
                else:
                    self.breaker.succeeded(admission)
                raise
            except BaseException:
                self.breaker.abandoned(admission)
                raise
        finally:
            self._slots.release()
        self._observe(call, str(response.status), started)
        self.breaker.succeeded(admission)
        return response

    async def _take_slot(self) -> None:
        """One of the `max_concurrency` slots. Waiting for one is the gateway's own crowd: it is bounded by
        `slot_wait`, and neither counts towards the exchange's deadline nor against the vendor."""
        if not self._slots.locked():
            # A free slot is taken without waiting: no deadline to arm (nearly every call, below the bound).
            await self._slots.acquire()
            return
        try:
            async with asyncio.timeout(self.settings.slot_wait):
                await self._slots.acquire()
        except TimeoutError as exc:
            raise VendorBusy(
                self.vendor,
                f"all {self.settings.max_concurrency} connections to {self.vendor.value} stayed busy for "
                f"{self.settings.slot_wait} s; try again",
            ) from exc

    def _observe(self, call: Call, outcome: str, started: float) -> None:
        if self.observer is not None:
            self.observer(self.vendor, call.method, call.route, outcome, time.perf_counter() - started)

    async def _exchange(self, call: Call) -> VendorResponse:
        try:
            # One deadline over the whole exchange: no attempt outlasts connect + read once it holds a slot,
            # which is what the operation journal's leases count on (with the slot's wait before it).
            async with (
                asyncio.timeout(self._deadline),
                self.session.request(
                    call.method,
                    call.url,
                    data=call.body,
                    params=call.params,
                    headers=call.headers,
                    timeout=self._timeout,
                ) as resp,
            ):
                raw = await resp.read()
                status, resp_headers = resp.status, resp.headers
        except TimeoutError as exc:
            raise self._failed(VendorTimeout(self.vendor, f"{self.vendor.value} did not answer in time")) from exc
        except aiohttp.ClientError as exc:
            raise self._failed(
                VendorUnavailable(self.vendor, f"{self.vendor.value} unreachable: {type(exc).__name__}")
            ) from exc
        data = self._decode(raw, status) if raw else None
        if status >= 400:
            error = self.error_for(status, data, resp_headers)
            # A 404 or a 409 is the vendor working as it should; only what says it is not is held against it.
            if status >= 500 or status in (401, 403, 429):
                raise self._failed(error)
            self.health.last_ok_at = time.time()
            raise error
        self.health.last_ok_at = time.time()
        return VendorResponse(status, data, resp_headers)

    def _decode(self, raw: bytes, status: int) -> Any:
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            if status >= 400:
                return None  # an error status tells enough; a vendor's error page need not be JSON
            raise self._failed(
                VendorProtocolError(self.vendor, f"{self.vendor.value} answered malformed JSON", status=status)
            ) from exc

    def _failed(self, error: VendorError) -> VendorError:
        self.health.last_error = error
        self.health.last_error_at = time.time()
        return error

    def parse(self, model: type[M], data: Any) -> M:
        """Validate a vendor answer against its wire model; a mismatch is the vendor's fault."""
        try:
            return model.model_validate(data)
        except pydantic.ValidationError as exc:
            raise self._failed(
                VendorProtocolError(
                    self.vendor,
                    f"{self.vendor.value} answered outside its contract: {exc.errors()[0]['msg']}",
                )
            ) from exc

    def error_for(self, status: int, data: Any, headers: CIMultiDictProxy[str]) -> VendorError:
        """Map an error answer to the hierarchy. Vendors override to read their own error body."""
        return error_by_status(self.vendor, status, message=f"{self.vendor.value} answered {status}")


def error_body(model: type[M], data: Any) -> M:
    """A vendor's error body, as far as it has its documented shape (`model` has defaults for every
    field): a badly shaped body must not turn the vendor's error into one of ours."""
    if isinstance(data, dict):
        try:
            return model.model_validate(data)
        except pydantic.ValidationError:
            pass
    return model()


def segment(value: str) -> str:
    """A value as one URL path segment: an id can never reach another route of the vendor's. Dots are
    escaped too, as URL normalization removes `.` and `..` segments; the URL is then sent as it is."""
    return quote(value, safe="").replace(".", "%2E")


def as_raw(wire: pydantic.BaseModel) -> dict[str, Any]:
    """The vendor's object in the vendor's own field names, for the store to keep beside the event."""
    return wire.model_dump(mode="json", by_alias=True)


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    value = headers.get("Retry-After")
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None


def error_by_status(
    vendor: Vendor,
    status: int,
    *,
    message: str,
    vendor_code: str | None = None,
    retry_after: float | None = None,
) -> VendorError:
    kw: dict[str, Any] = {"status": status, "vendor_code": vendor_code}
    if status == 401 or status == 403:
        return VendorAuthError(vendor, message, **kw)
    if status == 404:
        return VendorNotFound(vendor, message, **kw)
    if status == 409:
        return VendorConflict(vendor, message, **kw)
    if status == 412:
        return VendorPreconditionFailed(vendor, message, **kw)
    if status == 429:
        return VendorRateLimited(vendor, message, retry_after=retry_after, **kw)
    if status >= 500:
        return VendorUnavailable(vendor, message, **kw)
    return VendorRejected(vendor, message, **kw)


#: the metadata key under which a created object carries the gateway operation that made it, so that an
#: interrupted create can be found again
OPERATION_METADATA_KEY = "live_gateway_operation_id"

#: which of some native ids of a source other operations claimed (see `gateway.store.claims`)
ClaimedElsewhere = Callable[[Sequence[str]], Awaitable[set[str]]]
#: a target's create, its vendor request built, sent when called (`SourceAdapter.create_sender`)
CreateSender = Callable[[], Awaitable[Event]]


@dataclass(slots=True)
class CreateSpec:
    """What `createLiveEvent` asks of one target: the common fields, and the target's own options
    (its GraphQL input's fields in snake_case, e.g. `{"brand_id": "b1", "max_participants": 50}`)."""

    title: str
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None
    host_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)
    options: dict[str, Any] = field(default_factory=dict)


@dataclass(slots=True)
class EventChanges:
    """What `updateLiveEvent` changes; None leaves a field as it is."""

    title: str | None = None
    scheduled_start: datetime | None = None
    scheduled_end: datetime | None = None


@dataclass(slots=True)
class Page:
    events: list[Event]
    next_cursor: str | None


class SourceAdapter(ABC):
    """One source of live events: how to read it, list it and normalize it.

    Lifecycle verbs default to `UnsupportedByVendor`; a source overrides the ones its vendor can do.
    """

    source: ClassVar[Source]
    #: whether `list_page` walks every event of the source (Loop calls have no list endpoint)
    can_list: ClassVar[bool] = True
    #: whether re-sending the same create is safe because the vendor de-duplicates by idempotency key
    idempotent_create: ClassVar[bool] = False
    #: whether `find_created` tells this operation's object by likeness (name, time), so that it could adopt
    #: another operation's: then every object a create makes is claimed before its outcome is journaled.
    #: False where no lookup is made, or one finds the object by its operation exactly.
    finds_by_likeness: ClassVar[bool] = True
    #: the GraphQL input path of this source's target, for naming a bad field
    target_path: ClassVar[str] = ""
    #: createLiveEvent's common fields (by input name) this vendor has nowhere to keep, and why: the answer
    #: warns of each one given, rather than dropping it in silence
    create_drops: ClassVar[Mapping[str, str]] = {}
    #: updateLiveEvent's fields (by input name) this vendor can change; empty when it cannot be updated
    update_fields: ClassVar[frozenset[str]] = frozenset()
    #: why it cannot change the others
    update_drops: ClassVar[Mapping[str, str]] = {}

    def __init__(self, client: VendorClient) -> None:
        self.client = client

    @property
    def vendor(self) -> Vendor:
        return self.source.vendor

    @abstractmethod
    async def fetch(self, native_id: str) -> Event:
        """One event; raises `VendorNotFound` when the vendor has no such object."""

    async def fetch_many(self, native_ids: Sequence[str]) -> list[Event | VendorError | None]:
        """Many events at once, in the order asked; `None` for the ones the vendor does not have.

        The default asks for each concurrently (the client bounds how many are in flight); a source whose
        list endpoint serves a whole batch in one call overrides this.
        """
        if len(native_ids) == 1:
            return [await self.fetch_one(native_ids[0])]
        results = await asyncio.gather(*(self.fetch(i) for i in native_ids), return_exceptions=True)
        out: list[Event | VendorError | None] = []
        for result in results:
            if isinstance(result, VendorNotFound):
                out.append(None)
            elif isinstance(result, VendorError | Event):
                out.append(result)
            else:
                raise result
        return out

    async def fetch_one(self, native_id: str) -> Event | VendorError | None:
        """`fetch`, its failure as a value: awaited in place, since a task and a gathering future for one call
        cost more than the call's own work."""
        try:
            return await self.fetch(native_id)
        except VendorNotFound:
            return None
        except VendorError as error:
            return error

    async def list_page(self, cursor: str | None) -> Page:
        """One page of the vendor's listing, from `cursor` (None: the first page)."""
        raise UnsupportedByVendor(self.vendor, f"{self.source.value} has no list endpoint")

    def unsupported(self, verb: str) -> UnsupportedByVendor:
        return UnsupportedByVendor(self.vendor, f"{self.source.value} cannot {verb}")

    async def start(self, native_id: str) -> Event:
        raise self.unsupported("start")

    async def stop(self, native_id: str) -> Event:
        raise self.unsupported("stop")

    async def cancel(self, native_id: str) -> Event:
        raise self.unsupported("be cancelled")

    async def delete(self, native_id: str) -> Event | None:
        raise self.unsupported("be deleted")

    async def update(self, native_id: str, changes: EventChanges) -> Event:
        raise self.unsupported("be updated")

    async def register(self, native_id: str, *, role: str, guest_email: str | None) -> Event:
        raise self.unsupported("take registrations")

    def dropped_from_create(self, spec: CreateSpec) -> dict[str, str]:
        """The fields of `spec` given that this vendor does not keep, each with why."""
        given = {
            "scheduledStart": spec.scheduled_start,
            "scheduledEnd": spec.scheduled_end,
            "hostId": spec.host_id,
            "metadata": spec.metadata or None,
        }
        return {name: why for name, why in self.create_drops.items() if given.get(name) is not None}

    def prepare_create(self, spec: CreateSpec, operation_id: str) -> dict[str, Any]:
        """The vendor's request body for `spec`, checked against the vendor's contract before anything is
        sent, as JSON-ready data (it is journaled, and re-sent as it is on a retry).

        Raises `BadUserInput` whose `field` is the GraphQL input path of the bad value (`title`,
        `scheduledStart`, or `<target_path>.<field>`). Where the vendor keeps metadata, the body carries
        `operation_id` under `OPERATION_METADATA_KEY`.
        """
        raise self.unsupported("be created")

    async def create(self, body: dict[str, Any], *, idempotency_key: str) -> Event:
        """Create the object `body` describes; `idempotency_key` goes to vendors that de-duplicate by it."""
        return await self.create_sender(body, idempotency_key=idempotency_key)()

    def create_sender(self, body: dict[str, Any], *, idempotency_key: str) -> CreateSender:
        """`create(body)` with its request built now (checked, serialized) and sent when the result is
        called, so that the building can be done while something else is in flight. Raises, before
        anything is sent, what `create` would raise before sending."""
        raise self.unsupported("be created")

    async def find_created(
        self, body: dict[str, Any], *, operation_id: str, since: datetime, taken: ClaimedElsewhere
    ) -> Event | None:
        """After an interrupted create: the object that `create(body)` of `operation_id` may have made
        at or after `since`, or None when the vendor has none. `taken` tells which of some native ids
        other operations claimed: those are never this operation's. Raises `UnsupportedByVendor` where
        the vendor offers no way to look."""
        raise self.unsupported("be looked up by the operation that created it")
