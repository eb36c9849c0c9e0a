"""`live-gateway demo` as a newcomer runs it: a separate process, its printed instructions followed to the letter."""

from __future__ import annotations

import json
import os
import re
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

#: how long the demo may take to come up on a busy machine (it takes about two seconds)
STARTUP_SECONDS = 60
#: the events per source the demo seeds by default
SEEDED_PER_SOURCE = 12

STATS = "{ liveEventStats { total bySource { source count } } liveEvents(first: 1) { totalCount } }"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Demo:
    process: subprocess.Popen[str]
    url: str
    output: list[str]

    @property
    def text(self) -> str:
        return "".join(self.output)

    def printed(self, pattern: str) -> str:
        found = re.search(pattern, self.text)
        assert found, f"the demo did not print {pattern!r}:\n{self.text}"
        return found.group(1)

    @property
    def bearer(self) -> str:
        return self.printed(r"Authorization: Bearer ([\w.-]+)")


@contextmanager
def running_demo(data_dir: Path, env: dict[str, str] | None = None) -> Iterator[Demo]:
    port, sim_port = free_port(), free_port()
    command = [sys.executable, "-m", "gateway.cli", "demo", "--port", str(port), "--sim-port", str(sim_port)]
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("LIVE_GATEWAY_")},
        "LIVE_GATEWAY_DATA_DIR": str(data_dir),
        **(env or {}),
    }
    process = subprocess.Popen(
        command, env=environment, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=data_dir
    )
    demo = Demo(process, f"http://127.0.0.1:{port}", [])
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        # The last line of the instructions: everything above it is printed by then.
        while not demo.text.rstrip().endswith("Ctrl-C stops everything."):
            line = process.stdout.readline()
            if not line or time.monotonic() > deadline:
                pytest.fail(f"the demo did not come up:\n{demo.text}")
            demo.output.append(line)
        yield demo
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def graphql(demo: Demo, query: str, token: str) -> dict[str, object]:
    request = urllib.request.Request(
        f"{demo.url}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        body = json.loads(answer.read())
    assert "errors" not in body, body
    data: dict[str, object] = body["data"]
    return data


def test_the_first_listing_has_every_seeded_event_of_all_four_sources(tmp_path: Path) -> None:
    with running_demo(tmp_path) as demo:
        data = graphql(demo, STATS, demo.bearer)
    stats = data["liveEventStats"]
    assert isinstance(stats, dict)
    assert {row["source"]: row["count"] for row in stats["bySource"]} == {
        "LOOP_CALL": SEEDED_PER_SOURCE,
        "LOOP_SESSION": SEEDED_PER_SOURCE,
        "STREAMLOOP_STREAM": SEEDED_PER_SOURCE,
        "LIVEPUSH_STREAM": SEEDED_PER_SOURCE,
    }
    assert stats["total"] == 4 * SEEDED_PER_SOURCE
    assert data["liveEvents"] == {"totalCount": 4 * SEEDED_PER_SOURCE}


def test_the_jwt_secret_is_printed_and_kept_across_restarts(tmp_path: Path) -> None:
    with running_demo(tmp_path) as demo:
        secret = demo.printed(r"LIVE_GATEWAY_AUTH__JWT_SECRET='([^']+)'")
        first_bearer = demo.bearer
    kept = tmp_path / "jwt-secret"
    assert kept.read_text().strip() == secret
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    assert len(secret.encode()) >= 32

    # `live-gateway token`, as the demo says to run it, mints a token the restarted demo accepts; so is the
    # token of the first run (a GraphiQL tab may still hold it).
    minted = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "token", "--subject", "me", "--role", "viewer"],
        env={**os.environ, "LIVE_GATEWAY_AUTH__JWT_SECRET": secret},
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with running_demo(tmp_path) as demo:
        assert demo.printed(r"LIVE_GATEWAY_AUTH__JWT_SECRET='([^']+)'") == secret
        for token in (minted, first_bearer):
            assert graphql(demo, "{ vendors { vendor } }", token) == {
                "vendors": [{"vendor": "LOOP"}, {"vendor": "STREAMLOOP"}, {"vendor": "LIVEPUSH"}]
            }


def test_a_secret_from_the_environment_is_used_and_not_stored(tmp_path: Path) -> None:
    secret = "a-secret-of-the-operator-that-is-long-enough-0123456789"
    with running_demo(tmp_path, env={"LIVE_GATEWAY_AUTH__JWT_SECRET": secret}) as demo:
        assert demo.printed(r"JWT secret \(([^)]+)\)") == "LIVE_GATEWAY_AUTH__JWT_SECRET"
        assert demo.printed(r"LIVE_GATEWAY_AUTH__JWT_SECRET='([^']+)'") == secret
    assert not (tmp_path / "jwt-secret").exists()
