"""docker-compose.yml is for users (no Docker engine runs here), so parse it and check what it says."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from gateway.auth import Authenticator
from gateway.settings import ConfigurationError, Settings

ROOT = Path(__file__).resolve().parent.parent
PREFIX = "LIVE_GATEWAY_"


def setting_exists(env_var: str) -> bool:
    """Whether an environment variable names a real setting (prefix, nested with `__`, or an alias)."""
    aliases = {
        alias
        for field in Settings.model_fields.values()
        if field.validation_alias is not None
        for alias in getattr(field.validation_alias, "choices", [field.validation_alias])
    }
    if env_var in aliases:
        return True
    if not env_var.startswith(PREFIX):
        return False
    model: type[BaseModel] = Settings
    parts = env_var.removeprefix(PREFIX).lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if i < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())


def test_every_gateway_env_var_is_a_setting(compose: dict[str, Any]) -> None:
    env = compose["services"]["gateway"]["environment"]
    unknown = [name for name in env if not setting_exists(name)]
    assert not unknown, f"not settings: {unknown}"


def test_setting_check_rejects_typos() -> None:
    assert setting_exists("LIVE_GATEWAY_LOOP__BASE_URL")
    assert setting_exists("MONGODB_URI")
    assert not setting_exists("LIVE_GATEWAY_LOOP__BASEURL")
    assert not setting_exists("LIVE_GATEWAY_NOPE")
    assert not setting_exists("LIVE_GATEWAY_PORT__X")


def test_compose_env_parses_into_settings(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in compose["services"]["gateway"]["environment"].items():
        monkeypatch.setenv(name, str(value))
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.mongodb_uri is not None
    assert settings.mongodb_uri.startswith("mongodb://") and "@mongo:27017/" in settings.mongodb_uri
    assert "replicaSet=rs0" in settings.mongodb_uri
    assert settings.loop.configured and settings.streamloop.configured and settings.livepush.configured
    # Authentication stays on, with a secret the operator must give (compose refuses to start without it).
    assert settings.auth.enabled and settings.auth.jwt_secret is not None
    Authenticator(settings.auth).check_configured()


def test_mongo_is_a_single_node_replica_set(compose: dict[str, Any]) -> None:
    services = compose["services"]
    assert services["mongo"]["image"] == "mongo:8"
    assert "--replSet rs0" in " ".join(services["mongo"]["entrypoint"])
    assert "rs.initiate" in " ".join(services["mongo-init"]["command"])
    assert services["gateway"]["build"] == "."
    assert "simulate" in services["simulators"]["command"]


def test_dockerfile_installs_and_serves() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "pip install" in dockerfile and '"live-gateway", "serve"' in dockerfile


def published_addresses(service: dict[str, Any]) -> list[str]:
    """The host address each published port binds ("" for every interface)."""
    addresses = []
    for port in service.get("ports", []):
        if isinstance(port, dict):
            addresses.append(str(port.get("host_ip", "")))
        else:
            parts = str(port).split(":")
            addresses.append(":".join(parts[:-2]) if len(parts) > 2 else "")
    return addresses


def test_mongo_is_not_published_and_needs_credentials(compose: dict[str, Any]) -> None:
    mongo = compose["services"]["mongo"]
    assert all(address == "127.0.0.1" for address in published_addresses(mongo)), mongo.get("ports")
    environment = mongo["environment"]
    # The root password has no default: compose refuses to start without one.
    assert environment["MONGO_INITDB_ROOT_USERNAME"]
    assert (
        environment["MONGO_INITDB_ROOT_PASSWORD"].startswith("${") and ":?" in environment["MONGO_INITDB_ROOT_PASSWORD"]
    )
    # A replica set with authentication on needs a key file for its members' own authentication.
    assert "--keyFile" in " ".join(mongo["entrypoint"] + mongo.get("command", []))
    # Healthy means the server that follows the first start's set-up one, which listens on loopback only.
    assert mongo["healthcheck"]["test"][:4] == ["CMD", "mongosh", "--host", "mongo:27017"]
    # Everything that talks to MongoDB logs in.
    assert "-u" in compose["services"]["mongo-init"]["command"]
    uri = compose["services"]["gateway"]["environment"]["LIVE_GATEWAY_MONGODB_URI"]
    assert "${MONGO_PASSWORD}@mongo:27017" in uri and "authSource=admin" in uri


def test_simulator_controls_are_published_on_loopback_only(compose: dict[str, Any]) -> None:
    assert published_addresses(compose["services"]["simulators"]) == ["127.0.0.1"]


def test_image_runs_as_a_user_other_than_root() -> None:
    users = [line.split()[1] for line in (ROOT / "Dockerfile").read_text().splitlines() if line.startswith("USER ")]
    assert users, "the Dockerfile never leaves root"
    assert users[-1].split(":")[0] not in {"root", "0"}


def test_a_short_jwt_secret_in_compose_is_refused(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in compose["services"]["gateway"]["environment"].items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.setenv("LIVE_GATEWAY_AUTH__JWT_SECRET", "short")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    with pytest.raises(ConfigurationError, match="32 bytes"):
        Authenticator(settings.auth).check_configured()


def test_metrics_and_readiness_are_off_the_public_port(compose: dict[str, Any]) -> None:
    gateway = compose["services"]["gateway"]
    ops_port = gateway["environment"]["LIVE_GATEWAY_OPS_PORT"]
    assert ops_port != gateway["environment"]["LIVE_GATEWAY_PORT"]
    container_ports = [str(port).rsplit(":", 1)[-1] for port in gateway["ports"]]
    published = dict(zip(container_ports, published_addresses(gateway), strict=True))
    assert published.get(ops_port, "127.0.0.1") == "127.0.0.1"
