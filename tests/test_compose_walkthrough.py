"""The README's docker compose walkthrough, checked line by line against docker-compose.yml and the code
(no Docker engine runs here): the secrets it writes are the ones compose asks for, the services it names
exist, the ports it calls are the ones published, the seeding request seeds the simulators, the token
command signs with the secret the gateway gets, and the query runs."""

from __future__ import annotations

import re
import shlex
from pathlib import Path
from typing import Any

import pytest
import yaml
from graphql import parse, validate

from gateway.auth import Authenticator
from gateway.cli import build_parser
from gateway.schema import build_schema
from gateway.settings import AuthSettings, Role, SecretStr
from tests.conftest import Sim

ROOT = Path(__file__).resolve().parent.parent
SECTION = "### Walkthrough with docker compose"


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return document


@pytest.fixture(scope="module")
def walkthrough() -> list[str]:
    """The walkthrough's shell lines, comments left out and continued lines joined."""
    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index(SECTION) :]
    block = re.search(r"```sh\n(.*?)```", section, re.S)
    assert block, "the walkthrough has no sh block"
    text = block.group(1).replace("\\\n", " ")
    return [line.strip() for line in text.splitlines() if line.strip() and not line.strip().startswith("#")]


def line_with(walkthrough: list[str], start: str) -> str:
    found = [line for line in walkthrough if line.startswith(start)]
    assert found, f"no line starting {start!r}"
    return found[0]


def test_the_secrets_written_are_the_ones_compose_requires(walkthrough: list[str]) -> None:
    required = set(re.findall(r"\$\{(\w+):\?", (ROOT / "docker-compose.yml").read_text()))
    assert required == {"LIVE_GATEWAY_AUTH__JWT_SECRET", "MONGO_PASSWORD"}
    env_line = line_with(walkthrough, "printf")
    assert env_line.endswith("> .env")
    assert set(re.findall(r"(?:'|\\n)([A-Z_]+)=%s", env_line)) == required
    # 32 random bytes as hex: 64 characters, over the secret's minimum
    assert "openssl rand -hex 32" in env_line


def test_every_service_named_is_in_compose(walkthrough: list[str], compose: dict[str, Any]) -> None:
    services = set(compose["services"])
    named = []
    for line in walkthrough:
        words = shlex.split(line.split("$(", 1)[-1]) if "docker compose" in line else []
        if "compose" in words:
            rest = words[words.index("compose") + 1 :]
            named += [w.rstrip(")") for w in rest[1:] if not w.startswith("-") and w.rstrip(")") in services]
            if rest[0] == "exec":
                assert next(w for w in rest[1:] if not w.startswith("-")) in services
    assert {"simulators", "gateway"} <= set(named)


def test_the_ports_called_are_published(walkthrough: list[str], compose: dict[str, Any]) -> None:
    published = {
        int(port.split(":")[-2]): name
        for name, service in compose["services"].items()
        for port in service.get("ports", [])
    }
    called = {int(port) for port in re.findall(r"http://127\.0\.0\.1:(\d+)/", " ".join(walkthrough))}
    assert called == {8080, 8081}
    assert published[8080] == "gateway" and published[8081] == "simulators"
    gateway_port = compose["services"]["gateway"]["environment"]["LIVE_GATEWAY_PORT"]
    assert f"8080:{gateway_port}" in compose["services"]["gateway"]["ports"]


def test_the_services_waited_for_have_health_checks(compose: dict[str, Any]) -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "HEALTHCHECK" in dockerfile and '"live-gateway", "healthcheck"' in dockerfile
    simulators = compose["services"]["simulators"]["healthcheck"]["test"]
    assert simulators[:3] == ["CMD", "live-gateway", "healthcheck"]
    assert build_parser().parse_args(simulators[2:]).url == "http://127.0.0.1:8081/_sim/stats"
    grace = compose["services"]["gateway"]["stop_grace_period"]
    assert int(grace.rstrip("s")) > 10  # the default LIVE_GATEWAY_SHUTDOWN_TIMEOUT


async def test_the_seeding_request_seeds_the_simulators(walkthrough: list[str], sim: Sim) -> None:
    words = shlex.split(line_with(walkthrough, "curl -X POST"))
    url = next(w for w in words if w.startswith("http://"))
    body = words[words.index("-d") + 1]
    assert url.endswith("/_sim/seed")
    async with sim.http.post(f"{sim.url}/_sim/seed", data=body, headers={"Content-Type": "application/json"}) as r:
        assert r.status == 200
        seeded = await r.json()
    assert {source: len(ids) for source, ids in seeded.items()} == {
        "loop_call": 12,
        "loop_session": 12,
        "streamloop_stream": 12,
        "livepush_stream": 12,
    }


def test_the_token_command_signs_with_the_secret_the_gateway_gets(
    walkthrough: list[str], compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from gateway.cli import main

    gateway_env = compose["services"]["gateway"]["environment"]
    assert gateway_env["LIVE_GATEWAY_AUTH__JWT_SECRET"].startswith("${LIVE_GATEWAY_AUTH__JWT_SECRET:?")
    command = line_with(walkthrough, "TOKEN=$(")
    args = shlex.split(command.removeprefix("TOKEN=$(").removesuffix(")"))
    assert args[:5] == ["docker", "compose", "exec", "-T", "gateway"] and args[5] == "live-gateway"
    secret = "ab" * 32
    monkeypatch.setenv("LIVE_GATEWAY_AUTH__JWT_SECRET", secret)
    main(args[6:])
    token = capsys.readouterr().out.strip()
    principal = Authenticator(AuthSettings(jwt_secret=SecretStr(secret))).authenticate(f"Bearer {token}", None)
    assert (principal.name, principal.role) == ("sub:me", Role.OPERATOR)


def test_the_query_asked_runs_against_the_schema(walkthrough: list[str]) -> None:
    words = shlex.split(line_with(walkthrough, 'curl -H "Authorization'))
    body = yaml.safe_load(words[words.index("-d") + 1])
    assert validate(build_schema()._schema, parse(body["query"])) == []


def test_the_build_context_leaves_out_local_state_but_not_what_the_image_copies() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {".venv", ".data", ".git", "**/node_modules", ".env", "tests"} <= ignored
    copied = re.findall(r"^COPY (.+) \S+$", (ROOT / "Dockerfile").read_text(), re.M)
    for sources in copied:
        for source in sources.split():
            assert source not in ignored, f"the Dockerfile copies {source}, which .dockerignore leaves out"
