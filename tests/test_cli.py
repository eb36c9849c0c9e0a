"""Every command explains itself (`--help`) and answers a wrong setting or environment with one line that
names it and a non-zero exit, never a traceback. Each case runs the command as a user would: a process."""

from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from gateway.cli import build_parser

COMMANDS = (
    "serve",
    "demo",
    "simulate",
    "export-schema",
    "possible-types",
    "healthcheck",
    "token",
    "api-key",
    "check-store",
    "documents",
)


def run(*args: str, env: dict[str, str] | None = None, cwd: Path) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_GATEWAY_") and k != "MONGODB_URI"}
    environment.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "gateway.cli", *args],
        env=environment,
        cwd=cwd,  # no .env file there
        capture_output=True,
        text=True,
        timeout=60,
    )


def one_line_error(done: subprocess.CompletedProcess[str], command: str) -> str:
    assert done.returncode != 0, done
    assert "Traceback" not in done.stderr, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"live-gateway {command}: "), lines[0]
    return lines[0]


@pytest.fixture
def listening() -> Iterator[int]:
    """A port another process holds."""
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        yield int(holder.getsockname()[1])


@pytest.fixture
def closed_port() -> int:
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def subcommands() -> dict[str, argparse.ArgumentParser]:
    action = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return dict(action.choices)


def test_every_command_and_option_has_help_with_its_default() -> None:
    parsers = subcommands()
    assert set(parsers) == set(COMMANDS)
    for name, parser in parsers.items():
        assert parser.description, name
        for action in parser._actions:
            if isinstance(action, argparse._HelpAction):
                continue
            assert action.help, f"{name} {action.option_strings}: no help text"
            shown = " ".join(parser.format_help().split())
            if isinstance(action, argparse._SubParsersAction) or not action.option_strings:
                continue  # a positional: required, so without a default
            if action.default is not None and not action.required:
                assert f"(default: {action.default})" in shown, f"{name} {action.option_strings}: default not shown"
            elif not action.required:
                assert "default:" in action.help, f"{name} {action.option_strings}: says nothing of its default"


def test_each_option_states_its_default_once() -> None:
    # An option whose help already says its default (an environment variable, a computed URL) or that has
    # none must not be given a second, meaningless "(default: None)".
    for name, parser in subcommands().items():
        for help_parser in [parser, *subparsers_of(parser)]:
            shown = " ".join(help_parser.format_help().split())
            assert "(default: None)" not in shown, f"{name}: {shown}"
            for action in help_parser._actions:
                if action.option_strings and action.help and not isinstance(action, argparse._HelpAction):
                    text = " ".join(help_parser._get_formatter()._expand_help(action).split())
                    assert text.count("default") <= 1, f"{name} {action.option_strings}: {text}"


def subparsers_of(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    return [
        child
        for action in parser._actions
        if isinstance(action, argparse._SubParsersAction)
        for child in action.choices.values()
    ]


def test_help_runs_for_every_command(tmp_path: Path) -> None:
    done = run("serve", "--help", cwd=tmp_path)
    assert done.returncode == 0
    assert "--shutdown-timeout SECONDS" in done.stdout and "LIVE_GATEWAY_WORKERS" in done.stdout


def test_serve_without_mongodb(tmp_path: Path) -> None:
    line = one_line_error(run("serve", cwd=tmp_path), "serve")
    assert "LIVE_GATEWAY_MONGODB_URI" in line


def test_serve_without_credentials(tmp_path: Path, closed_port: int) -> None:
    env = {"LIVE_GATEWAY_MONGODB_URI": f"mongodb://127.0.0.1:{closed_port}"}
    line = one_line_error(run("serve", env=env, cwd=tmp_path), "serve")
    assert "LIVE_GATEWAY_AUTH__JWT_SECRET" in line


def test_serve_with_mongodb_unreachable(tmp_path: Path, closed_port: int, listening: int) -> None:
    env = {
        "LIVE_GATEWAY_MONGODB_URI": f"mongodb://127.0.0.1:{closed_port}",
        "LIVE_GATEWAY_MONGODB_CONNECT_TIMEOUT": "0.5",
        "LIVE_GATEWAY_AUTH__ENABLED": "false",
    }
    for workers in ("1", "2"):
        line = one_line_error(run("serve", "--port", "0", "--workers", workers, env=env, cwd=tmp_path), "serve")
        assert f"MongoDB at mongodb://127.0.0.1:{closed_port} did not answer within 0.5 s" in line
        assert "LIVE_GATEWAY_MONGODB_URI" in line


def test_serve_on_a_busy_port(tmp_path: Path, closed_port: int, listening: int) -> None:
    env = {"LIVE_GATEWAY_MONGODB_URI": f"mongodb://127.0.0.1:{closed_port}", "LIVE_GATEWAY_AUTH__ENABLED": "false"}
    line = one_line_error(run("serve", "--port", str(listening), env=env, cwd=tmp_path), "serve")
    assert line.endswith(f"cannot listen on 127.0.0.1:{listening} (--port or LIVE_GATEWAY_PORT): the port is in use")


def test_simulate_and_demo_on_a_busy_port(tmp_path: Path, listening: int) -> None:
    line = one_line_error(run("simulate", "--port", str(listening), cwd=tmp_path), "simulate")
    assert f"cannot listen on 127.0.0.1:{listening} (--port)" in line
    env = {"LIVE_GATEWAY_DATA_DIR": str(tmp_path / "data")}
    line = one_line_error(run("demo", "--sim-port", str(listening), env=env, cwd=tmp_path), "demo")
    assert f"cannot listen on 127.0.0.1:{listening} (--sim-port)" in line


def test_a_setting_that_does_not_validate_is_named(tmp_path: Path) -> None:
    line = one_line_error(run("serve", env={"LIVE_GATEWAY_PORT": "eighty"}, cwd=tmp_path), "serve")
    assert line.startswith("live-gateway serve: LIVE_GATEWAY_PORT: ")
    line = one_line_error(
        run("token", "--subject", "x", env={"LIVE_GATEWAY_AUTH__LEEWAY": "-1"}, cwd=tmp_path), "token"
    )
    assert line.startswith("live-gateway token: LIVE_GATEWAY_AUTH__LEEWAY: ")


def test_token_without_a_secret(tmp_path: Path) -> None:
    line = one_line_error(run("token", "--subject", "x", cwd=tmp_path), "token")
    assert "LIVE_GATEWAY_AUTH__JWT_SECRET" in line


def test_export_schema_to_a_missing_folder(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "schema.graphql"
    line = one_line_error(run("export-schema", "--output", str(target), cwd=tmp_path), "export-schema")
    assert line == f"live-gateway export-schema: cannot write --output {target}: No such file or directory"


@pytest.mark.parametrize("workers", ["0", "-3", "two"])
def test_workers_must_be_one_or_more(tmp_path: Path, workers: str) -> None:
    done = run("serve", "--workers", workers, cwd=tmp_path)
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1].startswith("live-gateway serve: error: argument --workers: must be")


def test_possible_types_to_a_missing_folder(tmp_path: Path) -> None:
    target = tmp_path / "missing" / "possibleTypes.json"
    line = one_line_error(run("possible-types", "--output", str(target), cwd=tmp_path), "possible-types")
    assert line == f"live-gateway possible-types: cannot write --output {target}: No such file or directory"


def test_healthcheck_of_nothing_listening(tmp_path: Path, closed_port: int) -> None:
    done = run("healthcheck", env={"LIVE_GATEWAY_PORT": str(closed_port)}, cwd=tmp_path)
    line = one_line_error(done, "healthcheck")
    assert line.startswith(f"live-gateway healthcheck: http://127.0.0.1:{closed_port}/healthz: ")


def test_a_setting_that_is_not_json_is_named(tmp_path: Path) -> None:
    done = run("serve", env={"LIVE_GATEWAY_AUTH__API_KEYS": "not json"}, cwd=tmp_path)
    line = one_line_error(done, "serve")
    assert line.startswith("live-gateway serve: LIVE_GATEWAY_AUTH (or one of its __ parts) is not valid JSON: ")


def test_documents_push_with_mongodb_unreachable(tmp_path: Path, closed_port: int) -> None:
    manifest = tmp_path / "manifest.json"
    manifest.write_text(
        '{"format": "apollo-persisted-query-manifest", "version": 1, "operations": '
        '[{"id": "abc", "name": "Q", "type": "query", "body": "query Q { vendors { vendor } }"}]}'
    )
    env = {"LIVE_GATEWAY_MONGODB_CONNECT_TIMEOUT": "0.5"}
    done = run("documents", "push", str(manifest), "--uri", f"mongodb://127.0.0.1:{closed_port}", env=env, cwd=tmp_path)
    line = one_line_error(done, "documents push")
    assert f"MongoDB at mongodb://127.0.0.1:{closed_port} did not answer within 0.5 s" in line
    assert "Topology Description" not in line


def test_documents_push_errors_name_the_command(tmp_path: Path, closed_port: int) -> None:
    line = one_line_error(run("documents", "push", "missing.json", cwd=tmp_path), "documents push")
    assert "LIVE_GATEWAY_MONGODB_URI" in line and "--uri" in line
    uri = f"mongodb://127.0.0.1:{closed_port}"
    line = one_line_error(run("documents", "push", "missing.json", "--uri", uri, cwd=tmp_path), "documents push")
    assert "missing.json" in line and "No such file or directory" in line


def test_an_unreachable_store_is_one_short_line(tmp_path: Path, closed_port: int) -> None:
    # The driver's topology description is for its own logs: the line says what failed and where.
    env = {
        "LIVE_GATEWAY_MONGODB_URI": f"mongodb://127.0.0.1:{closed_port}",
        "LIVE_GATEWAY_MONGODB_CONNECT_TIMEOUT": "0.5",
        "LIVE_GATEWAY_AUTH__ENABLED": "false",
    }
    line = one_line_error(run("serve", "--port", "0", env=env, cwd=tmp_path), "serve")
    assert "Topology Description" not in line and "configured timeouts" not in line, line
    done = run("check-store", "--uri", f"mongodb://127.0.0.1:{closed_port}", "--timeout", "0.5", cwd=tmp_path)
    assert done.returncode == 2
    line = one_line_error(done, "check-store")
    assert "Topology Description" not in line and "Connect call failed" in line, line


@pytest.mark.parametrize("uri", ["mongodb://db:port", "mongodb://user:p@ss@db:27017"])
def test_a_uri_the_driver_cannot_parse_is_named(tmp_path: Path, uri: str) -> None:
    # The driver raises a plain ValueError for a port that is not a number (as an unescaped password makes).
    env = {"LIVE_GATEWAY_MONGODB_URI": uri, "LIVE_GATEWAY_AUTH__ENABLED": "false"}
    line = one_line_error(run("serve", "--port", "0", env=env, cwd=tmp_path), "serve")
    assert "LIVE_GATEWAY_MONGODB_URI is not a MongoDB URI we can use" in line
    line = one_line_error(run("check-store", "--uri", uri, "--timeout", "0.5", cwd=tmp_path), "check-store")
    assert "--uri is not a MongoDB URI we can use" in line
    manifest = tmp_path / "manifest.json"
    manifest.write_text('{"q1": "query Q { vendors { vendor } }"}')
    done = run("documents", "push", str(manifest), "--uri", uri, cwd=tmp_path)
    assert "--uri is not a MongoDB URI we can use" in one_line_error(done, "documents push")


def test_the_demo_prints_a_token_command_that_runs_where_it_was_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # `make run` starts .venv/bin/live-gateway, which is on no one's PATH: the printed command must say so.
    from gateway.cli import command_name

    script = tmp_path / ".venv" / "bin" / "live-gateway"
    script.parent.mkdir(parents=True)
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", [str(script), "demo"])
    monkeypatch.setenv("PATH", "/nonexistent")
    assert command_name() == ".venv/bin/live-gateway"
    monkeypatch.setenv("PATH", str(script.parent))
    assert command_name() == "live-gateway"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("PATH", "/nonexistent")
    assert command_name() == str(script.resolve())
