"""The peer: Hive Gateway in front of the same simulators, from the OpenAPI documents they serve.

`install()` puts bench/peer's pinned packages into bench/peer/node_modules (npm ci, or npm install when
there is no lock file yet); `compose()` runs Mesh Compose (bench/peer/mesh.config.ts) against the running
simulators, which writes a supergraph whose three REST subgraphs carry the simulators' address and bearer
token; `serve()` runs Hive Gateway (bench/peer/gateway.config.ts) on that supergraph.

The peer's queries are in bench/queries.py.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bench.load import PEER_DIR, node_binary
from bench.processes import TOKEN, command, free_port

NODE_MODULES = PEER_DIR / "node_modules"
LOCK = PEER_DIR / "package-lock.json"
# npm writes its own copy of the lock into node_modules once an install is complete.
INSTALLED_LOCK = NODE_MODULES / ".package-lock.json"


def available() -> bool:
    return node_binary() is not None and shutil.which("npm") is not None


def installed() -> bool:
    return INSTALLED_LOCK.exists() and (not LOCK.exists() or INSTALLED_LOCK.stat().st_mtime >= LOCK.stat().st_mtime)


def install(log: Path) -> None:
    """Install the pinned packages unless the lock file's install is already there."""
    if installed():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise RuntimeError("npm is not installed")
    verb = ["ci"] if LOCK.exists() else ["install"]
    with log.open("wb") as out:
        done = subprocess.run(
            [npm, *verb, "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=PEER_DIR,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=900,
        )
    if done.returncode != 0:
        raise RuntimeError(f"npm {verb[0]} in {PEER_DIR} failed; see {log}")


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env["NODE_ENV"] = "production"
    env.update(extra)
    return env


def compose(sim_url: str, output: Path, log: Path) -> None:
    """The supergraph of the three vendors, from the OpenAPI documents the simulators at `sim_url` serve."""
    output.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        done = subprocess.run(
            [str(NODE_MODULES / ".bin" / "mesh-compose"), "-c", "mesh.config.ts", "-o", str(output.resolve())],
            cwd=PEER_DIR,
            env=_env(PEER_SIM_URL=sim_url, PEER_SIM_TOKEN=TOKEN),
            stdout=out,
            stderr=subprocess.STDOUT,
            check=False,
            timeout=300,
        )
    if done.returncode != 0 or not output.exists():
        raise RuntimeError(f"mesh-compose failed; see {log}")


@dataclass(frozen=True)
class Peer:
    url: str
    pid: int


@contextlib.contextmanager
def serve(supergraph: Path, log: Path) -> Iterator[Peer]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [
        str(NODE_MODULES / ".bin" / "hive-gateway"),
        "supergraph",
        "-c",
        "gateway.config.ts",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        # One process, as the gateway runs by default.
        "--fork",
        "1",
    ]
    env = _env(PEER_SUPERGRAPH=str(supergraph.resolve()))
    with command(argv, env=env, ready=f"{url}/healthcheck", cwd=PEER_DIR, log=log, timeout=120) as child:
        yield Peer(url=url, pid=child.pid)
