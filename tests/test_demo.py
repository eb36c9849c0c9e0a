"""`live-gateway demo` as a newcomer runs it: a separate process, its printed instructions followed to the letter."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.cli import is_loopback
from gateway.demo_secret import demo_jwt_secret
from gateway.settings import ConfigurationError
from tests.demo_harness import SEEDED_PER_SOURCE, graphql, running_demo

STATS = "{ liveEventStats { total bySource { source count } } liveEvents(first: 1) { totalCount } }"


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


def test_graphiql_is_signed_in_only_where_the_demo_listens_on_this_machine_alone() -> None:
    assert all(is_loopback(host) for host in ("127.0.0.1", "127.1.2.3", "::1", "localhost"))
    assert not any(is_loopback(host) for host in ("0.0.0.0", "::", "192.0.2.10", "demo.example.com"))


def test_a_secret_file_that_cannot_be_used_is_one_clear_error(tmp_path: Path) -> None:
    not_a_directory = tmp_path / "data"
    not_a_directory.write_text("")
    with pytest.raises(ConfigurationError, match=r"cannot keep the demo's JWT secret in .*LIVE_GATEWAY_DATA_DIR="):
        demo_jwt_secret(not_a_directory)
    short = tmp_path / "short"
    short.mkdir()
    (short / "jwt-secret").write_text("too-short\n")
    with pytest.raises(ConfigurationError, match="shorter than 32 bytes: delete it"):
        demo_jwt_secret(short)
    (short / "jwt-secret").unlink()
    made = demo_jwt_secret(short)
    assert demo_jwt_secret(short) == made and len(made.encode()) >= 32
