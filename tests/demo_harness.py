"""`live-gateway demo` in a process of its own, as a newcomer runs it, and its printed instructions."""

from __future__ import annotations

import json
import os
import re
import socket
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
