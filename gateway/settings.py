"""Settings, read from the environment (prefix `LIVE_GATEWAY_`, nested with `__`) and `.env`."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class ConfigurationError(RuntimeError):
    """Settings the gateway will not start with; the message is one line that names the setting."""


class VendorSettings(BaseModel):
    """What every vendor needs: where it is, how the gateway proves who it is, and how patient to be."""

    base_url: str | None = None
    token: SecretStr | None = None
    connect_timeout: float = Field(2.0, gt=0, description="seconds to open a connection")
    read_timeout: float = Field(5.0, gt=0, description="seconds to wait for a whole answer")
    max_concurrency: int = Field(64, ge=1, description="vendor requests in flight at once, per replica")
    slot_wait: float = Field(
        10.0,
        gt=0,
        description="seconds a call waits for one of the max_concurrency slots; the wait is no vendor failure",
    )
    not_found_for: float = Field(
        30.0, ge=0, description="seconds an id the vendor said it does not have is answered as missing without asking"
    )
    retries: int = Field(2, ge=0, le=10, description="extra attempts for an idempotent call that failed on the way")
    retry_backoff: float = Field(0.1, ge=0, description="seconds before the first retry; doubles, with full jitter")
    retry_after_max: float = Field(
        2.0, ge=0, description="the longest Retry-After (429) honoured by waiting; a longer one fails at once"
    )
    breaker_failures: int = Field(5, ge=1, description="consecutive failures that open the circuit breaker")
    breaker_reset: float = Field(10.0, gt=0, description="seconds an open breaker waits before letting a probe by")
    fresh_for: float = Field(30.0, ge=0, description="seconds a cached event is served without asking")
    budget: str | None = Field(
        None,
        description="outbound requests to the vendor per window by all replicas together (`600/minute`); "
        "none for no budget",
    )
    deduplicate_reads: bool = Field(
        True, description="identical reads in flight at once (method, URL, credentials) share one call"
    )

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.token)


class LoopSettings(VendorSettings):
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 secret of the provider webhooks received at /webhooks/loop"
    )
    webhook_tolerance: float = Field(
        300.0,
        gt=0,
        le=86400,
        description="seconds a webhook's signed timestamp may be from the gateway's clock; older ones are refused",
    )


class StreamloopSettings(VendorSettings):
    budget: str | None = Field("600/minute", description="Streamloop's documented quota: 600 requests a minute")
    workspace_id: str | None = Field(None, description="sent as X-Workspace-Id with an API key")
    api_key: SecretStr | None = Field(None, description="X-API-Key; used instead of the bearer token")

    @property
    def configured(self) -> bool:
        return bool(self.base_url and (self.token or (self.api_key and self.workspace_id)))


class LivepushSettings(VendorSettings):
    pass


class Role(StrEnum):
    """What a caller may do; each role may do what the roles before it may."""

    VIEWER = "viewer"  # queries and subscriptions
    OPERATOR = "operator"  # mutations
    ADMIN = "admin"  # the operations journal and retries

    @property
    def rank(self) -> int:
        return list(Role).index(self)


class ApiKey(BaseModel):
    """A static API key, kept as the SHA-256 of the key (`live-gateway api-key` makes one)."""

    name: str
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    role: Role


#: the shortest HS256 secret accepted: HMAC-SHA256's own output size (RFC 7518, section 3.2)
MIN_JWT_SECRET_BYTES = 32


class AuthSettings(BaseModel):
    enabled: bool = Field(True, description="require credentials on /graphql")
    jwt_secret: SecretStr | None = Field(None, description="HS256 secret of bearer JWTs")
    jwt_public_key: str | None = Field(None, description="PEM public key of RS256 bearer JWTs")
    jwks_file: Path | None = Field(None, description="JWKS file with the public keys of RS256 bearer JWTs")
    jwks_url: str | None = Field(None, description="JWKS URL with the public keys of RS256 bearer JWTs")
    jwks_refresh_interval: float = Field(300.0, gt=0, description="seconds between reads of the JWKS URL")
    jwks_min_refetch: float = Field(
        30.0, ge=0, description="seconds at least between reads of the JWKS URL for tokens naming an unknown key"
    )
    audience: str | None = Field(None, description="required `aud` of bearer JWTs")
    issuer: str | None = Field(None, description="required `iss` of bearer JWTs")
    role_claim: str = Field("role", description="JWT claim with the caller's role (a string or a list)")
    leeway: float = Field(30.0, ge=0, description="seconds of clock skew allowed on exp and nbf")
    api_keys: list[ApiKey] = Field(default_factory=list, description="static API keys (X-API-Key)")

    @property
    def has_credentials(self) -> bool:
        return bool(self.jwt_secret or self.jwt_public_key or self.jwks_file or self.jwks_url or self.api_keys)


class LimitSettings(BaseModel):
    max_depth: int = Field(12, ge=1, description="deepest selection a query may have")
    max_aliases: int = Field(30, ge=1, description="aliases a query may use")
    max_tokens: int = Field(2000, ge=1, description="tokens a query document may have")
    max_cost: int = Field(5000, ge=1, description="cost a query may have; a list field costs its first/last")
    default_list_size: int = Field(50, ge=1, description="what a list field without first/last counts as")
    introspection: bool = Field(
        True, description="answer introspection (__schema, __type); off, GraphiQL reads GET /schema.graphql instead"
    )
    introspection_cost: int = Field(1000, ge=0, description="what one __schema or __type costs, its selection included")
    max_body_bytes: int = Field(
        1 << 20, ge=1024, description="largest request body, and largest websocket message, accepted"
    )
    header_timeout: float = Field(10.0, gt=0, description="seconds a client has to send a request's head")
    body_timeout: float = Field(30.0, gt=0, description="seconds a client has to send a request's body")
    keepalive_timeout: float = Field(
        75.0, gt=0, description="seconds an idle kept-alive connection is held open for the client's next request"
    )
    connection_init_timeout: float = Field(
        10.0, gt=0, description="seconds a websocket has to send connection_init (until then it is nobody's socket)"
    )
    max_sockets_per_caller: int = Field(16, ge=1, description="websockets one caller may hold open, per replica")
    max_subscriptions_per_socket: int = Field(
        32, ge=1, description="operations (subscriptions, and queries in flight) one websocket may run at once"
    )
    vendor_call_cost: int = Field(
        10, ge=0, description="what each vendor call a field can make adds to a query's cost (nodes: one per id)"
    )
    vendor_call_budget: str = Field(
        "600/minute", description="vendor calls per caller per replica, in `limits` notation; empty for none"
    )
    rate_limit: str = Field("1200/minute", description="requests per caller, in `limits` notation; empty for none")
    shared_rate_limit: bool = Field(
        True, description="count each caller's requests across all replicas (in MongoDB), not per replica"
    )


class DocumentMode(StrEnum):
    """Which GraphQL documents the gateway runs."""

    OFF = "off"  # texts only; persisted-query hashes and document ids are refused
    APQ = "apq"  # texts, and documents known by their hash or id, registered by clients on first use
    TRUSTED = "trusted"  # only documents an operator loaded with `live-gateway documents push`


class DocumentSettings(BaseModel):
    mode: DocumentMode = Field(DocumentMode.APQ, description="off | apq | trusted")
    exempt_roles: list[Role] = Field(
        default_factory=list, description="roles that may send any document in trusted mode (e.g. admin, for GraphiQL)"
    )
    remembered: int = Field(10_000, ge=0, description="documents each replica keeps in memory")
    max_registered: int = Field(
        10_000, ge=0, description="documents clients may register (automatic persisted queries), all callers together"
    )
    max_registered_bytes: int = Field(
        64 << 10, ge=0, description="the longest text a client may register; a longer one runs, unregistered"
    )


class ResponseCacheSettings(BaseModel):
    enabled: bool = Field(True, description="keep query answers in each replica and give them again")
    max_bytes: int = Field(64 << 20, ge=0, description="memory the kept answers may take in each replica")
    max_ttl: float = Field(300.0, ge=0, description="seconds an answer is kept at most, however fresh what it read")
    windowed_ttl: float = Field(
        1.0, ge=0, description="seconds counts over time windows (liveEventStats) are kept at most"
    )
    share_in_flight: bool = Field(
        True, description="identical queries that arrive while one executes wait for its answer, kept or not"
    )
    coalesce_wait: float = Field(
        5.0,
        ge=0,
        description="seconds an execution holds the identical requests that come meanwhile; past that they "
        "execute their own",
    )


class CorsSettings(BaseModel):
    allow_origins: list[str] = Field(default_factory=list, description='origins allowed to call /graphql ("*": any)')
    allow_credentials: bool = False
    max_age: int = Field(600, ge=0, description="seconds a browser may cache a preflight answer")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIVE_GATEWAY_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    host: str = "127.0.0.1"
    port: int = 8080
    ops_host: str = Field("127.0.0.1", description="address the operators' listener (/metrics, /readyz) binds")
    ops_port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="port of the operators' listener; set, /metrics and /readyz leave the public listener",
    )
    mongodb_uri: str | None = Field(
        None,
        validation_alias=AliasChoices("LIVE_GATEWAY_MONGODB_URI", "MONGODB_URI"),
        description="MongoDB to use; unset means the embedded server (demo only)",
    )
    mongodb_database: str = Field("live_gateway", description="the database the gateway keeps its collections in")
    mongodb_connect_timeout: float = Field(
        3.0, gt=0, description="seconds to wait at start for MongoDB to answer before giving up"
    )
    mongodb_timeout: float = Field(
        2.0,
        gt=0,
        description="seconds a MongoDB operation may take, finding the server included, before the request "
        "answers STORE_UNAVAILABLE",
    )
    data_dir: str = Field(".data", description="where the embedded MongoDB keeps its files")
    index_refresh_interval: float = Field(
        30.0, ge=0, description="seconds after which a source's listing is read again from the vendor"
    )
    refresher_enabled: bool = Field(True, description="run the background index refresher")
    reconciler_enabled: bool = Field(True, description="take over operations a crashed replica left running")
    reconcile_interval: float = Field(5.0, gt=0, description="seconds between looks for abandoned operations")
    read_memo_ttl: float = Field(
        1.0,
        ge=0,
        description="seconds a read of the index is answered again from this replica's memory, and what this"
        " replica stored last of an event stands in for a cache read",
    )
    write_behind_delay: float = Field(
        0.005,
        ge=0,
        description="seconds a cache write-back waits for others to land with it in one bulk write",
    )
    changes_poll_interval: float = Field(
        0.25, gt=0, description="seconds between reads of the change feed that carries live updates"
    )
    graphiql: bool = Field(True, description="serve GraphiQL at /graphql to browsers, and its files at /graphiql/")
    graphiql_headers: dict[str, str] = Field(
        default_factory=dict,
        description="headers every GraphiQL tab starts with; anyone who can load the page reads them, so put "
        "credentials here only where no one else reaches the gateway (the demo signs GraphiQL in this way)",
    )
    sse_heartbeat_interval: float = Field(
        15.0, gt=0, description="seconds between keep-alive comments on a quiet event stream (SSE)"
    )
    workers: int = Field(1, ge=1, description="server processes sharing the port (SO_REUSEPORT)")
    shutdown_timeout: float = Field(
        10.0, ge=0, description="seconds requests in flight get to finish once SIGTERM or SIGINT stops the server"
    )
    uvloop: bool = Field(True, description="serve on uvloop's event loop where it is installed")
    log_format: str = Field("json", pattern="^(json|text)$", description="json: one JSON object per line")
    log_level: str = "INFO"
    otel_enabled: bool = Field(False, description="trace with OpenTelemetry (needs the `otel` extra)")
    auth: AuthSettings = AuthSettings()
    limits: LimitSettings = LimitSettings()
    cors: CorsSettings = CorsSettings()
    documents: DocumentSettings = DocumentSettings()
    response_cache: ResponseCacheSettings = ResponseCacheSettings()
    compress_min_bytes: int = Field(
        1024, ge=0, description="answers this large or larger are compressed when Accept-Encoding allows"
    )
    loop: LoopSettings = LoopSettings()
    streamloop: StreamloopSettings = StreamloopSettings()
    livepush: LivepushSettings = LivepushSettings()
