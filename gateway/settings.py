"""Settings, read from the environment (prefix `LIVE_GATEWAY_`, nested with `__`) and `.env`."""

from __future__ import annotations

from pydantic import AliasChoices, BaseModel, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class VendorSettings(BaseModel):
    """What every vendor needs: where it is, how the gateway proves who it is, and how patient to be."""

    base_url: str | None = None
    token: SecretStr | None = None
    connect_timeout: float = Field(2.0, gt=0, description="seconds to open a connection")
    read_timeout: float = Field(5.0, gt=0, description="seconds to wait for a whole answer")
    max_concurrency: int = Field(16, ge=1, description="vendor requests in flight at once, per replica")
    fresh_for: float = Field(30.0, ge=0, description="seconds a cached event is served without asking")

    @property
    def configured(self) -> bool:
        return bool(self.base_url and self.token)


class LoopSettings(VendorSettings):
    webhook_secret: SecretStr | None = Field(
        None, description="HMAC-SHA256 secret of the provider webhooks received at /webhooks/loop"
    )


class StreamloopSettings(VendorSettings):
    workspace_id: str | None = Field(None, description="sent as X-Workspace-Id with an API key")
    api_key: SecretStr | None = Field(None, description="X-API-Key; used instead of the bearer token")

    @property
    def configured(self) -> bool:
        return bool(self.base_url and (self.token or (self.api_key and self.workspace_id)))


class LivepushSettings(VendorSettings):
    pass


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="LIVE_GATEWAY_",
        env_nested_delimiter="__",
        env_file=".env",
        extra="ignore",
    )

    host: str = "127.0.0.1"
    port: int = 8080
    mongodb_uri: str | None = Field(
        None,
        validation_alias=AliasChoices("LIVE_GATEWAY_MONGODB_URI", "MONGODB_URI"),
        description="MongoDB to use; unset means the embedded server (demo only)",
    )
    mongodb_database: str = "live_gateway"
    data_dir: str = Field(".data", description="where the embedded MongoDB keeps its files")
    index_refresh_interval: float = Field(
        30.0, ge=0, description="seconds after which a source's listing is read again from the vendor"
    )
    refresher_enabled: bool = Field(True, description="run the background index refresher")
    reconciler_enabled: bool = Field(True, description="take over operations a crashed replica left running")
    reconcile_interval: float = Field(5.0, gt=0, description="seconds between looks for abandoned operations")
    changes_poll_interval: float = Field(
        0.25, gt=0, description="seconds between reads of the change feed that carries live updates"
    )
    graphiql: bool = True
    loop: LoopSettings = LoopSettings()
    streamloop: StreamloopSettings = StreamloopSettings()
    livepush: LivepushSettings = LivepushSettings()
