"""Start the simulators, the embedded MongoDB and the gateway, each in a process of its own."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from gateway.store.embedded import EmbeddedMongo

TOKEN = "sim-token"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=1) as resp:
                if resp.status == 200:
                    return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


@contextlib.contextmanager
def process(*args: str, env: dict[str, str] | None = None, ready: str) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(
        [sys.executable, "-m", "gateway.cli", *args],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for(ready)
        yield child
    finally:
        child.terminate()
        child.wait(timeout=10)


@dataclass
class Stack:
    sim_url: str
    gateway_url: str
    gateway_pid: int


@contextlib.contextmanager
def stack(**gateway_env: str) -> Iterator[Stack]:
    sim_port, gateway_port = free_port(), free_port()
    sim_url = f"http://127.0.0.1:{sim_port}"
    with (
        tempfile.TemporaryDirectory() as data,
        EmbeddedMongo(data_dir=Path(data)) as mongo,
        process("simulate", "--port", str(sim_port), "--token", TOKEN, ready=f"{sim_url}/_sim/health"),
    ):
        env = {k: v for k, v in os.environ.items() if not k.startswith("LIVE_GATEWAY_")}
        env.update(LIVE_GATEWAY_MONGODB_URI=mongo.uri, LIVE_GATEWAY_REFRESHER_ENABLED="false")
        for vendor, prefix in (("LOOP", "loop"), ("STREAMLOOP", "streamloop/v1"), ("LIVEPUSH", "livepush")):
            env[f"LIVE_GATEWAY_{vendor}__BASE_URL"] = f"{sim_url}/{prefix}"
            env[f"LIVE_GATEWAY_{vendor}__TOKEN"] = TOKEN
        env.update(gateway_env)
        gateway_url = f"http://127.0.0.1:{gateway_port}"
        with process("serve", "--port", str(gateway_port), env=env, ready=f"{gateway_url}/healthz") as gateway:
            yield Stack(sim_url=sim_url, gateway_url=gateway_url, gateway_pid=gateway.pid)
