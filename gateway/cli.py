"""`live-gateway serve | demo | simulate | export-schema | token | api-key | check-store`."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import multiprocessing
import os
import re
import shutil
import signal
import sys
import tempfile
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import aiohttp
from aiohttp import web
from pydantic import SecretStr, ValidationError
from pydantic_settings import SettingsError

from gateway.demo_secret import SECRET_FILE, demo_jwt_secret
from gateway.graphiql import FIRST_QUERY
from gateway.observability import configure_logging
from gateway.server import check_port_free, serve_until_signalled, serving, until_signalled
from gateway.settings import ConfigurationError, LivepushSettings, LoopSettings, Role, Settings, StreamloopSettings

if TYPE_CHECKING:
    from pymongo import AsyncMongoClient

log = logging.getLogger(__name__)

SUBSCRIPTION = """subscription {
  liveEventUpdated(filter: {sources: [STREAMLOOP_STREAM]}) { id title status vendorStatus isLive }
}"""


def main(argv: Sequence[str] | None = None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        run_command(args)
    except ConfigurationError as exc:
        # A setting or the environment is wrong: one line that names it, no traceback.
        sys.exit(f"live-gateway {args.command}: {exc}")
    except (ValidationError, SettingsError) as exc:  # settings read by a command without load_settings
        sys.exit(f"live-gateway {args.command}: {describe_invalid_settings(exc)}")
    except KeyboardInterrupt:
        sys.exit(130)


def run_command(args: argparse.Namespace) -> None:
    if args.command == "documents":
        sys.exit(asyncio.run(push_documents(args.file, args.uri)))
    elif args.command == "serve":
        run_serve(args.host, args.port, args.workers, args.shutdown_timeout)
    elif args.command == "token":
        print_token(args.subject, Role(args.role), args.ttl)
    elif args.command == "api-key":
        print_api_key(args.name, Role(args.role))
    elif args.command == "demo":
        asyncio.run(run_demo(args.host, args.port, args.sim_port, args.seed, args.count, args.shutdown_timeout))
    elif args.command == "simulate":
        run_simulate(args.host, args.port, args.token)
    elif args.command == "export-schema":
        export_schema(args.output)
    elif args.command == "healthcheck":
        check_health(args.url, args.timeout)
    elif args.command == "possible-types":
        export_possible_types(args.output)
    elif args.command == "check-store":
        sys.exit(asyncio.run(run_check_store(args.uri, args.timeout)))


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the descriptions' line breaks and shows each option's default: argparse's, unless the help
    already says it (a default that comes from a setting) or there is none to show."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if action.default is None or action.required or "default:" in text:
            return text
        return super()._get_help_string(action)


def positive_int(text: str) -> int:
    value = int_argument(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def port_number(text: str) -> int:
    value = int_argument(text)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"must be a port number from 0 to 65535, got {value}")
    return value


def seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a number of seconds, got {text!r}") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more seconds, got {text}")
    return value


def int_argument(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be a whole number, got {text!r}") from None


def add_role_option(parser: argparse.ArgumentParser, meaning: str) -> None:
    parser.add_argument("--role", choices=[r.value for r in Role], default=Role.VIEWER.value, help=meaning)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="live-gateway",
        description="One GraphQL schema over every live event: Loop Live, Streamloop and Livepush.",
        epilog="Settings come from LIVE_GATEWAY_* environment variables and a .env file (see the README); "
        "`live-gateway COMMAND --help` explains each command.",
        formatter_class=HelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def command(name: str, summary: str, description: str) -> argparse.ArgumentParser:
        return commands.add_parser(name, help=summary, description=description, formatter_class=HelpFormatter)

    serve = command(
        "serve",
        "run the gateway",
        "Run the gateway on MongoDB and the configured vendors. Settings come from LIVE_GATEWAY_* and .env;\n"
        "an option given here wins over its setting. SIGTERM or SIGINT stops it gracefully: websockets are\n"
        "closed with 1001 (going away) and requests in flight get --shutdown-timeout seconds to finish.",
    )
    serve.add_argument("--host", help="address to listen on (default: LIVE_GATEWAY_HOST, else 127.0.0.1)")
    serve.add_argument("--port", type=port_number, help="port to listen on (default: LIVE_GATEWAY_PORT, else 8080)")
    serve.add_argument(
        "--workers",
        type=positive_int,
        help="server processes sharing the port with SO_REUSEPORT, 1 or more (default: LIVE_GATEWAY_WORKERS, else 1)",
    )
    serve.add_argument(
        "--shutdown-timeout",
        type=seconds,
        metavar="SECONDS",
        help="on SIGTERM or SIGINT, how long requests in flight get to finish "
        "(default: LIVE_GATEWAY_SHUTDOWN_TIMEOUT, else 10)",
    )

    demo = command(
        "demo",
        "run simulators, an embedded MongoDB and the gateway with GraphiQL",
        "Start the vendor simulators (seeded), an embedded MongoDB under LIVE_GATEWAY_DATA_DIR (unless\n"
        "LIVE_GATEWAY_MONGODB_URI names one) and the gateway with GraphiQL; print a token and a first query.\n"
        "Ctrl-C stops everything.",
    )
    demo.add_argument("--host", default="127.0.0.1", help="address the gateway and the simulators listen on")
    demo.add_argument("--port", type=port_number, default=8080, help="the gateway's port (GraphiQL at /graphql)")
    demo.add_argument("--sim-port", type=port_number, default=8081, help="the vendor simulators' port")
    demo.add_argument("--seed", type=int, default=7, help="random seed of the simulators' events")
    demo.add_argument("--count", type=positive_int, default=12, help="events seeded per source")
    demo.add_argument(
        "--shutdown-timeout",
        type=seconds,
        default=1.0,
        metavar="SECONDS",
        help="on Ctrl-C, how long requests in flight get to finish",
    )

    simulate = command(
        "simulate",
        "serve the vendor simulators",
        "Serve Loop Live, Streamloop and Livepush simulators (empty: seed them with POST /_sim/seed).",
    )
    simulate.add_argument("--host", default="127.0.0.1", help="address to listen on")
    simulate.add_argument("--port", type=port_number, default=8081, help="port to listen on")
    simulate.add_argument("--token", default="sim-token", help="the bearer token the simulators accept")

    export = command(
        "export-schema", "print or write the GraphQL SDL", "Print the gateway's GraphQL schema (SDL), or write it."
    )
    export.add_argument("--output", type=Path, help="file to write, in a folder that exists (default: standard output)")

    token = command(
        "token",
        "sign a bearer token with LIVE_GATEWAY_AUTH__JWT_SECRET",
        "Sign an HS256 bearer token with LIVE_GATEWAY_AUTH__JWT_SECRET (and the configured audience and issuer).",
    )
    token.add_argument("--subject", required=True, help="who the token is for (the `sub` claim)")
    add_role_option(token, "what the bearer may do")
    token.add_argument("--ttl", type=seconds, default=3600.0, metavar="SECONDS", help="seconds until it expires")

    api_key = command(
        "api-key",
        "make a new API key and the settings entry that accepts it",
        "Make a new API key; print it once, and the entry of LIVE_GATEWAY_AUTH__API_KEYS that accepts it.",
    )
    api_key.add_argument("--name", required=True, help="what the key is for (shown in logs)")
    add_role_option(api_key, "what the key's holder may do")

    health = command(
        "healthcheck",
        "exit 0 when a server on this machine answers its health check (for container HEALTHCHECKs)",
        "GET the URL (the gateway's /healthz by default) and exit 0 on a 2xx answer within --timeout, else 1\n"
        "with one line saying what happened. Needs no settings beyond LIVE_GATEWAY_PORT.",
    )
    health.add_argument(
        "--url", help="what to ask (default: http://127.0.0.1:LIVE_GATEWAY_PORT/healthz, the port 8080 unless set)"
    )
    health.add_argument("--timeout", type=seconds, default=3.0, metavar="SECONDS", help="how long to wait for it")

    possible = command(
        "possible-types",
        "print the schema's possibleTypes for client caches (Apollo Client)",
        "Print, or write, the schema's possibleTypes as JSON: each interface (LiveEvent, Node) and the object\n"
        "types that implement it, as Apollo Client's InMemoryCache({possibleTypes}) takes them. The gateway\n"
        "serves the same at /possible-types.json.",
    )
    possible.add_argument(
        "--output", type=Path, help="file to write, in a folder that exists (default: standard output)"
    )

    check_store = command(
        "check-store",
        "run the store's conformance checks against a MongoDB-compatible server",
        "Run the store's conformance checks against a MongoDB-compatible server and print a table of what\n"
        "holds; exit status 0 when every check holds, 1 when one does not, 2 when the server does not answer.",
    )
    check_store.add_argument(
        "--uri", help="the server to check (default: LIVE_GATEWAY_MONGODB_URI, else a fresh embedded server)"
    )
    check_store.add_argument(
        "--timeout", type=seconds, default=5.0, help="seconds to wait for the server to answer at first"
    )

    documents = command(
        "documents",
        "persisted documents kept in MongoDB for every replica",
        "Manage the persisted (trusted) documents every replica reads from MongoDB.",
    )
    document_commands = documents.add_subparsers(
        dest="documents_command", required=True, metavar="COMMAND", help="what to do with them"
    )
    push = document_commands.add_parser(
        "push",
        help="load trusted documents from an Apollo persisted-query manifest or Relay's persisted_queries.json",
        description="Load trusted documents from an Apollo persisted-query manifest or Relay's "
        "persisted_queries.json; exit status 0 when all of them are stored.",
        formatter_class=HelpFormatter,
    )
    push.add_argument("file", type=Path, help="the manifest to load")
    push.add_argument("--uri", help="MongoDB to load them into (default: LIVE_GATEWAY_MONGODB_URI)")
    return parser


def load_settings() -> Settings:
    """The settings from the environment and .env; one that does not validate is a one-line error naming it."""
    try:
        return Settings()
    except (ValidationError, SettingsError) as exc:
        raise ConfigurationError(describe_invalid_settings(exc)) from None


def describe_invalid_settings(exc: ValidationError | SettingsError) -> str:
    if isinstance(exc, SettingsError):
        # A nested setting (a list, an object) whose value is not JSON: pydantic-settings names the field.
        field = re.search(r'field "(\w+)"', str(exc))
        name = f"LIVE_GATEWAY_{field.group(1).upper()}" if field else "a LIVE_GATEWAY_ setting"
        reason = f": {exc.__cause__}" if exc.__cause__ else ""
        return f"{name} (or one of its __ parts) is not valid JSON{reason}"
    problems = []
    for error in exc.errors():
        name = "LIVE_GATEWAY_" + "__".join(str(part).upper() for part in error["loc"])
        problems.append(f"{name}: {error['msg']}")
    return "; ".join(problems)


def run_serve(host: str | None, port: int | None, workers: int | None, shutdown_timeout: float | None) -> None:
    settings = load_settings()
    host = host or settings.host
    port = settings.port if port is None else port
    workers = workers or settings.workers
    timeout = settings.shutdown_timeout if shutdown_timeout is None else shutdown_timeout
    preflight(settings, host, port, workers)
    if workers == 1:
        serve_one(host, port, False, timeout)
        return
    # Each worker binds the port with SO_REUSEPORT and the kernel spreads connections among them; they
    # share nothing but MongoDB, as replicas on separate machines would.
    spawn = multiprocessing.get_context("spawn")
    children = [spawn.Process(target=serve_one, args=(host, port, True, timeout), daemon=False) for _ in range(workers)]
    for child in children:
        child.start()

    def forward(signum: int, _frame: object) -> None:
        for child in children:
            if child.pid and child.is_alive():
                os.kill(child.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    if hasattr(signal, "SIGHUP"):  # every worker reloads its settings
        signal.signal(signal.SIGHUP, forward)
    for child in children:
        child.join()
    sys.exit(max((child.exitcode or 0) for child in children))


def preflight(settings: Settings, host: str, port: int, workers: int) -> None:
    """What would stop every worker, checked once before any starts: each failure is one line, not one
    per worker."""
    from gateway.app import check_mongodb
    from gateway.auth import Authenticator

    if not settings.mongodb_uri:
        raise ConfigurationError(
            "no MongoDB: set LIVE_GATEWAY_MONGODB_URI (or MONGODB_URI), or run `live-gateway demo`"
        )
    Authenticator(settings.auth).check_configured()
    if port:
        check_port_free(host, port, "--port or LIVE_GATEWAY_PORT")
    if settings.ops_port is not None:
        if settings.ops_port == port:
            raise ConfigurationError(f"LIVE_GATEWAY_OPS_PORT is the public port ({port}): give it a port of its own")
        if settings.ops_port:
            check_port_free(settings.ops_host, settings.ops_port, "LIVE_GATEWAY_OPS_PORT")
    if workers > 1:
        asyncio.run(check_mongodb(settings))


def serve_one(host: str, port: int, reuse_port: bool, shutdown_timeout: float) -> None:
    from gateway.app import create_app, create_ops_app

    try:
        settings = load_settings()
        configure_logging(settings.log_format, settings.log_level)
        with asyncio.Runner(loop_factory=lambda: event_loop(settings.uvloop)) as runner:
            app = create_app(settings)
            runner.run(
                serve_until_signalled(
                    app,
                    host,
                    port,
                    shutdown_timeout=shutdown_timeout,
                    header_timeout=settings.limits.header_timeout,
                    keepalive_timeout=settings.limits.keepalive_timeout,
                    reuse_port=reuse_port,
                    ops=None
                    if settings.ops_port is None
                    else (create_ops_app(app), settings.ops_host, settings.ops_port),
                )
            )
    except ConfigurationError as exc:
        sys.exit(f"live-gateway serve: {exc}")


def event_loop(prefer_uvloop: bool) -> asyncio.AbstractEventLoop:
    """uvloop's event loop when asked for and installed (it is not on Windows), else asyncio's own."""
    if prefer_uvloop:
        try:
            import uvloop
        except ImportError:
            pass
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def print_token(subject: str, role: Role, ttl: float) -> None:
    from gateway.auth import check_jwt_secret, issue_token

    auth = load_settings().auth
    if auth.jwt_secret is None:
        raise ConfigurationError("set LIVE_GATEWAY_AUTH__JWT_SECRET to the gateway's HS256 secret")
    check_jwt_secret(auth.jwt_secret)
    print(
        issue_token(
            auth.jwt_secret.get_secret_value(),
            subject=subject,
            role=role,
            ttl=ttl,
            audience=auth.audience,
            issuer=auth.issuer,
        )
    )


def print_api_key(name: str, role: Role) -> None:
    from gateway.auth import hash_api_key, new_api_key

    key = new_api_key()
    entry = {"name": name, "sha256": hash_api_key(key), "role": role.value}
    print(f"API key (send it as X-API-Key; it is shown once): {key}")
    print(f"Settings entry (add it to LIVE_GATEWAY_AUTH__API_KEYS): {json.dumps(entry)}")


def run_simulate(host: str, port: int, token: str) -> None:
    from gateway.simulators import SimulatorConfig, create_app

    configure_logging("text", "INFO")

    async def simulate() -> None:
        async with serving(create_app(SimulatorConfig(token=token)), host, port, shutdown_timeout=1.0) as url:
            log.info("simulators listening on %s (control: %s/_sim/stats)", url, url)
            await until_signalled()

    asyncio.run(simulate())


def export_schema(output: Path | None) -> None:
    from gateway.schema import build_schema

    write_output(build_schema().as_str() + "\n", output)


def write_output(text: str, output: Path | None) -> None:
    """`text` to standard output, or to the --output file."""
    if output is None:
        sys.stdout.write(text)
        return
    try:
        output.write_text(text)
    except OSError as exc:
        raise ConfigurationError(f"cannot write --output {output}: {exc.strerror}") from None


def check_health(url: str | None, timeout: float) -> None:
    import urllib.error
    import urllib.request

    if url is None:
        port = os.environ.get("LIVE_GATEWAY_PORT") or "8080"
        url = f"http://127.0.0.1:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=timeout) as answer:
            status = answer.status
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (OSError, ValueError) as exc:
        raise ConfigurationError(f"{url}: {getattr(exc, 'reason', None) or exc}") from None
    if not 200 <= status < 300:
        raise ConfigurationError(f"{url}: HTTP {status}")


def export_possible_types(output: Path | None) -> None:
    from gateway.possible_types import possible_types
    from gateway.schema import build_schema

    write_output(json.dumps(possible_types(build_schema()._schema), indent=2) + "\n", output)


@contextlib.asynccontextmanager
async def mongodb_for_demo(settings: Settings) -> AsyncIterator[str]:
    """The configured MongoDB, or the embedded server under the data directory, stopped on exit."""
    if settings.mongodb_uri:
        yield settings.mongodb_uri
        return
    from gateway.store.embedded import EmbeddedMongo, EmbeddedMongoError

    server = EmbeddedMongo(data_dir=Path(settings.data_dir) / "mongodb")
    try:
        await asyncio.to_thread(server.start)
    except EmbeddedMongoError as exc:
        raise ConfigurationError(f"embedded MongoDB (LIVE_GATEWAY_DATA_DIR={settings.data_dir}): {exc}") from None
    try:
        yield server.uri
    finally:
        await asyncio.to_thread(server.stop)


def mongo_client(uri: str, answer_within: float, failed_to: str) -> AsyncMongoClient[dict[str, Any]] | None:
    """A client for `uri` that waits `answer_within` seconds for the server; None (said on stderr, after
    `failed_to`) when the URI cannot be used."""
    from pymongo import AsyncMongoClient
    from pymongo.errors import PyMongoError

    try:
        return AsyncMongoClient(uri, tz_aware=True, serverSelectionTimeoutMS=max(1, int(answer_within * 1000)))
    except (PyMongoError, ValueError) as error:  # a port that is not a number is a plain ValueError
        print(f"{failed_to} --uri is not a MongoDB URI we can use: {error}", file=sys.stderr)
        return None


async def run_check_store(uri: str | None, answer_within: float = 5.0) -> int:
    """Print the conformance checks' table for the server at `uri`; 0 when every check holds, 1 when one
    does not, 2 when the server does not answer within `answer_within` seconds.

    Each check works in a scratch database of its own (`lgw_conformance_*`), dropped afterwards."""
    from pymongo.errors import PyMongoError

    from gateway.app import driver_reason
    from gateway.store.conformance import ALL_CHECKS, format_table, run_checks

    async with contextlib.AsyncExitStack() as stack:
        if uri is None:
            uri = Settings().mongodb_uri
        if uri is None:
            from gateway.store.embedded import EmbeddedMongo

            data_dir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lgw-check-store-")))
            server = EmbeddedMongo(data_dir=data_dir)
            await asyncio.to_thread(server.start)
            stack.push_async_callback(asyncio.to_thread, server.stop)
            uri = server.uri
            print("checking a fresh embedded server (nx-27017)")
        client = mongo_client(uri, answer_within, "live-gateway check-store:")
        if client is None:
            return 1
        stack.push_async_callback(client.close)
        try:
            await client.admin.command("ping")
        except PyMongoError as error:
            # Every check would wait as long again: say it once.
            print(
                f"live-gateway check-store: the server did not answer within {answer_within:g} s: "
                f"{driver_reason(error)}",
                file=sys.stderr,
            )
            return 2
        results = await run_checks(client, ALL_CHECKS)
    print(format_table(results))
    return 0 if all(result.holds for result in results) else 1


async def push_documents(path: Path, uri: str | None) -> int:
    """Load the documents of a manifest as trusted documents; 0 when all of them are stored, else 1.

    Each is checked against the schema first: nothing is stored when any of them would not run."""
    from graphql import GraphQLError, parse, validate
    from pymongo.errors import PyMongoError

    from gateway.app import driver_reason, redact_uri
    from gateway.persisted import iter_manifest
    from gateway.schema import build_schema
    from gateway.store.documents import DocumentConflict, Documents

    failed_to = "live-gateway documents push:"
    settings = Settings()
    uri = uri or settings.mongodb_uri
    if uri is None:
        print(f"{failed_to} no MongoDB: set LIVE_GATEWAY_MONGODB_URI or pass --uri", file=sys.stderr)
        return 1
    try:
        manifest = list(iter_manifest(json.loads(await asyncio.to_thread(path.read_bytes))))
    except (OSError, ValueError) as exc:  # a JSONDecodeError is a ValueError
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        print(f"{failed_to} {path}: {reason}", file=sys.stderr)
        return 1
    schema = build_schema(settings)._schema
    problems: list[str] = []
    for document_id, text, _ in manifest:
        try:
            errors = validate(schema, parse(text))
        except GraphQLError as exc:
            errors = [exc]
        problems.extend(f"{document_id}: {error.message}" for error in errors)
    if problems:
        print("\n".join(problems), file=sys.stderr)
        print(f"{failed_to} {path}: nothing pushed, {len(problems)} document error(s)", file=sys.stderr)
        return 1
    wait = settings.mongodb_connect_timeout
    client = mongo_client(uri, wait, failed_to)
    if client is None:
        return 1
    try:
        store = Documents(client[settings.mongodb_database])
        try:
            await client.admin.command("ping")
        except PyMongoError as exc:
            print(
                f"{failed_to} MongoDB at {redact_uri(uri)} did not answer within {wait:g} s "
                f"({driver_reason(exc)}); check --uri or LIVE_GATEWAY_MONGODB_URI "
                "(the wait is LIVE_GATEWAY_MONGODB_CONNECT_TIMEOUT)",
                file=sys.stderr,
            )
            return 1
        await store.ensure_indexes()
        failed = 0
        for document_id, text, name in manifest:
            try:
                await store.put(document_id, text, trusted=True, name=name)
            except DocumentConflict as exc:
                print(str(exc), file=sys.stderr)
                failed += 1
    finally:
        await client.close()
    print(f"{path}: {len(manifest) - failed} trusted document(s) stored, {failed} refused")
    return 0 if failed == 0 else 1


async def first_draft_stream(sim_url: str, token: str) -> str | None:
    """A seeded Streamloop stream that can be started, for the demo's live-update walk-through."""
    async with (
        aiohttp.ClientSession() as http,
        http.get(
            f"{sim_url}/streamloop/v1/streams", params={"limit": 100}, headers={"Authorization": f"Bearer {token}"}
        ) as resp,
    ):
        streams = (await resp.json())["data"]
    startable = [
        s["id"] for s in streams if s.get("state") in ("draft", "stopped", "scheduled") and s.get("destinationID")
    ]
    return startable[0] if startable else None


def is_loopback(host: str) -> bool:
    """True when `host` names this machine alone (a name other than localhost is not trusted to)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def run_demo(host: str, port: int, sim_port: int, seed: int, count: int, shutdown_timeout: float = 1.0) -> None:
    from gateway.app import create_app
    from gateway.auth import issue_token
    from gateway.keys import SERVICES
    from gateway.model import Source
    from gateway.simulators import SimulatorConfig
    from gateway.simulators import create_app as create_simulators

    configure_logging("text", "INFO")
    token = "sim-token"
    sim_url = f"http://{host}:{sim_port}"
    base = load_settings()
    # Authentication stays on in the demo: the secret from the environment, else one kept in the data
    # directory (so tokens outlive a restart), and a token that GraphiQL starts with.
    auth = base.auth
    secret_from = "LIVE_GATEWAY_AUTH__JWT_SECRET"
    if auth.enabled and auth.jwt_secret is None:
        secret_file = Path(base.data_dir) / SECRET_FILE
        secret_from = f"kept in {secret_file}"
        auth = auth.model_copy(update={"jwt_secret": SecretStr(demo_jwt_secret(Path(base.data_dir)))})
    bearer = None
    if auth.enabled and auth.jwt_secret is not None:
        bearer = issue_token(
            auth.jwt_secret.get_secret_value(), subject="demo", role=Role.ADMIN, ttl=12 * 3600,
            audience=auth.audience, issuer=auth.issuer,
        )  # fmt: skip
    # The page carries the token to whoever loads it: only where the demo listens on this machine alone.
    graphiql_signed_in = bearer is not None and is_loopback(host)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)

    async with (
        mongodb_for_demo(base) as mongodb_uri,
        serving(
            create_simulators(SimulatorConfig(token=token)),
            host,
            sim_port,
            setting="--sim-port",
            shutdown_timeout=shutdown_timeout,
        ),
    ):
        async with (
            aiohttp.ClientSession() as http,
            http.post(f"{sim_url}/_sim/seed", json={"seed": seed, "count": count}) as resp,
        ):
            resp.raise_for_status()
            seeded: dict[str, list[str]] = await resp.json()

        async def index_seeded_calls(app: web.Application) -> None:
            # Loop cannot list calls: the index learns of calls made elsewhere by reading them by id, as it
            # does in production when a provider webhook names one or a caller reads one.
            await app[SERVICES].index.learn(Source.LOOP_CALL, seeded.get("loop_call", []))

        settings = base.model_copy(
            update={
                "mongodb_uri": mongodb_uri,
                "auth": auth,
                # The demo follows the simulators closely, so that changes show up in seconds.
                "index_refresh_interval": min(base.index_refresh_interval, 4.0),
                "loop": LoopSettings(base_url=f"{sim_url}/loop", token=token),
                "streamloop": StreamloopSettings(base_url=f"{sim_url}/streamloop/v1", token=token),
                "livepush": LivepushSettings(base_url=f"{sim_url}/livepush", token=token),
                "graphiql_headers": {"Authorization": f"Bearer {bearer}"} if graphiql_signed_in else {},
            }
        )
        async with serving(
            create_app(settings),
            host,
            port,
            shutdown_timeout=shutdown_timeout,
            header_timeout=settings.limits.header_timeout,
            keepalive_timeout=settings.limits.keepalive_timeout,
            prepare=index_seeded_calls,
        ):
            print(f"\nlive-gateway demo is up\n  GraphiQL:   http://{host}:{port}/graphql")
            print(f"  simulators: {sim_url} (control: {sim_url}/_sim/stats)")
            print(f"  MongoDB:    {mongodb_uri}")
            if bearer is not None and auth.jwt_secret is not None:
                if graphiql_signed_in:
                    print("\nAuthentication is on. GraphiQL opens signed in with an admin token for 12 hours;")
                    print("other clients send it too:")
                else:
                    print(
                        "\nAuthentication is on. Paste this into GraphiQL's Headers tab (an admin token for 12 hours):"
                    )
                    print(f'\n  {{"Authorization": "Bearer {bearer}"}}')
                print(f"\n  curl -H 'Authorization: Bearer {bearer}' ...")
                print(f"\nThe JWT secret ({secret_from}) signs more tokens, for example a viewer's:")
                print(
                    f"\n  LIVE_GATEWAY_AUTH__JWT_SECRET='{auth.jwt_secret.get_secret_value()}' "
                    f"{command_name()} token --subject me --role viewer"
                )
            print(f"\nA first query (GraphiQL's first tab holds it):\n\n{FIRST_QUERY}\n")
            stream = await first_draft_stream(sim_url, token)
            if stream:
                print("Live updates: run this subscription in a second GraphiQL tab,\n")
                print(SUBSCRIPTION)
                print("\nthen start a stream in the simulators; it appears there within seconds:\n")
                print(
                    f"  curl -X POST -H 'Authorization: Bearer {token}' "
                    f"{sim_url}/streamloop/v1/streams/{stream}/start\n"
                )
            print("Ctrl-C stops everything.", flush=True)
            await stop.wait()


def command_name() -> str:
    """How to run this command again from the same shell: `live-gateway` when that is what PATH finds, else the
    script's path (relative when under the working directory, as `make run`'s .venv/bin/live-gateway is)."""
    script = Path(sys.argv[0])
    if script.name != "live-gateway":  # `python -m gateway.cli`
        return "live-gateway"
    on_path = shutil.which("live-gateway")
    if on_path is not None and Path(on_path).resolve() == script.resolve():
        return "live-gateway"
    try:
        return str(script.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(script.resolve())


if __name__ == "__main__":
    main()
