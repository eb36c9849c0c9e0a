"""Start the simulators, the embedded MongoDB and the gateway, each in a process of its own."""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from gateway.store.embedded import EmbeddedMongo

TOKEN = "sim-token"
SIM_HEADERS = {"Authorization": f"Bearer {TOKEN}"}
#: each vendor's name in the gateway's settings and its base URL's path on the simulators
VENDOR_PREFIXES = {"LOOP": "loop", "STREAMLOOP": "streamloop/v1", "LIVEPUSH": "livepush"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 30.0, child: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            if child is not None and child.poll() is not None:
                raise RuntimeError(f"{child.args!r} exited with {child.returncode} before {url} answered") from None
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def command(
    argv: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    ready: str,
    cwd: Path | None = None,
    log: Path | None = None,
    timeout: float = 30.0,
) -> Iterator[subprocess.Popen[bytes]]:
    """A child process, up once `ready` answers 200, terminated on exit."""
    with contextlib.ExitStack() as stack:
        out = stack.enter_context(log.open("wb")) if log is not None else subprocess.DEVNULL
        child = subprocess.Popen(
            list(argv), env=dict(env) if env is not None else None, cwd=cwd, stdout=out, stderr=out
        )
        try:
            wait_for(ready, timeout, child)
            yield child
        finally:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


@contextlib.contextmanager
def process(*args: str, env: dict[str, str] | None = None, ready: str) -> Iterator[subprocess.Popen[bytes]]:
    """`live-gateway <args>` in a process of its own."""
    with command([sys.executable, "-m", "gateway.cli", *args], env=env, ready=ready) as child:
        yield child


@dataclass(frozen=True)
class Credentials:
    """An API key the gateway is started with, and the header that presents it."""

    key: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    name: str = "bench"
    role: str = "admin"

    @property
    def env(self) -> dict[str, str]:
        entry = {"name": self.name, "sha256": hashlib.sha256(self.key.encode()).hexdigest(), "role": self.role}
        return {"LIVE_GATEWAY_AUTH__API_KEYS": json.dumps([entry])}

    @property
    def headers(self) -> dict[str, str]:
        return {"X-API-Key": self.key}


def gateway_env(sim_url: str, mongodb_uri: str, credentials: Credentials, **overrides: str) -> dict[str, str]:
    """The environment of a gateway over the simulators: no refresher (a benchmark decides when the index
    is read), no per-caller rate limit nor budget of vendor calls (the load comes from one caller), no vendor
    budget (the simulators lift Streamloop's quota), and only the settings given here."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_GATEWAY_")}
    env.update(
        LIVE_GATEWAY_MONGODB_URI=mongodb_uri,
        LIVE_GATEWAY_REFRESHER_ENABLED="false",
        LIVE_GATEWAY_LIMITS__RATE_LIMIT="",
        LIVE_GATEWAY_LIMITS__VENDOR_CALL_BUDGET="",
        # The simulators lift Streamloop's quota of 600 requests a minute, so the gateway's budget is lifted too.
        LIVE_GATEWAY_STREAMLOOP__BUDGET="",
        LIVE_GATEWAY_LOG_LEVEL="WARNING",
    )
    for vendor, prefix in VENDOR_PREFIXES.items():
        env[f"LIVE_GATEWAY_{vendor}__BASE_URL"] = f"{sim_url}/{prefix}"
        env[f"LIVE_GATEWAY_{vendor}__TOKEN"] = TOKEN
    env.update(credentials.env)
    env.update(overrides)
    return env


@dataclass
class Stack:
    sim_url: str
    gateway_url: str
    gateway_pid: int
    credentials: Credentials = field(default_factory=Credentials)

    @property
    def headers(self) -> dict[str, str]:
        return self.credentials.headers


@contextlib.contextmanager
def stack(**gateway_overrides: str) -> Iterator[Stack]:
    sim_port, gateway_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    credentials = Credentials()
    with (
        tempfile.TemporaryDirectory() as data,
        EmbeddedMongo(data_dir=Path(data)) as mongo,
        process("simulate", "--port", str(sim_port), "--token", TOKEN, ready=f"{sim_url}/_sim/health"),
    ):
        env = gateway_env(sim_url, mongo.uri, credentials, **gateway_overrides)
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        with process("serve", "--port", str(gateway_port), env=env, ready=f"{gateway_url}/healthz") as gateway:
            yield Stack(sim_url=sim_url, gateway_url=gateway_url, gateway_pid=gateway.pid, credentials=credentials)


def cpu_seconds(pid: int) -> float:
    """CPU time (user and system) a process and its children have used so far, from /proc."""
    total = 0.0
    ticks = os.sysconf("SC_CLK_TCK")
    for each in (pid, *_children(pid)):
        with contextlib.suppress(OSError, ValueError, IndexError):
            # The command name (field 2) may hold spaces; the fields after its closing parenthesis do not.
            fields = Path(f"/proc/{each}/stat").read_text().rpartition(")")[2].split()
            total += (int(fields[11]) + int(fields[12])) / ticks
    return total


def rss_bytes(pid: int) -> int:
    """Resident memory of a process and its children (a gateway with several workers), from /proc."""
    total = 0
    for each in (pid, *_children(pid)):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1]) * 1024
    return total


def _children(pid: int) -> list[int]:
    found: list[int] = []
    with contextlib.suppress(OSError):
        for task in Path(f"/proc/{pid}/task").iterdir():
            for child in (task / "children").read_text().split():
                found.append(int(child))
                found.extend(_children(int(child)))
    return found


class PeakRss:
    """Samples a process's resident memory in a thread while the block runs; `peak` is the largest seen."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid = pid
        self.interval = interval
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while True:
            self.peak = max(self.peak, rss_bytes(self.pid))
            if self._stop.wait(self.interval):
                return

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes(self.pid))
