"""The embedded MongoDB launcher: a real nx-27017 child process per test."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient

from gateway.store.embedded import PID_FILE_NAME, EmbeddedMongo, EmbeddedMongoError


def ping(uri: str) -> bool:
    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=2000)
    try:
        return client.admin.command("ping")["ok"] == 1
    finally:
        client.close()


def is_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def dead_pid() -> int:
    """The pid of a process that has exited and been collected."""
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    return int(finished.stdout)


@pytest.fixture
def bystander() -> Iterator[subprocess.Popen[bytes]]:
    """A live process that is not a MongoDB server."""
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    yield process
    process.kill()
    process.wait()


def test_start_answers_pings_and_stop_ends_the_process(tmp_path: Path) -> None:
    server = EmbeddedMongo(tmp_path)
    server.start()
    try:
        assert server.uri == f"mongodb://127.0.0.1:{server.port}/"
        assert ping(server.uri)
        pid = server.pid
        assert pid is not None and is_alive(pid)
        record = json.loads((tmp_path / PID_FILE_NAME).read_text())
        assert (record["pid"], record["owner_pid"], record["port"]) == (pid, os.getpid(), server.port)
        assert list((tmp_path / "db").iterdir()), "the databases live under the data directory"
    finally:
        server.stop()

    assert not is_alive(pid)
    assert not (tmp_path / PID_FILE_NAME).exists()
    server.stop()  # again: nothing to do
    assert server.pid is None


def test_data_persists_across_restarts(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path) as server:
        client: MongoClient[dict[str, Any]] = MongoClient(server.uri)
        client["app"]["things"].insert_one({"_id": "kept"})
        client.close()

    with EmbeddedMongo(tmp_path) as server:
        client = MongoClient(server.uri)
        assert client["app"]["things"].find_one({"_id": "kept"}) == {"_id": "kept"}
        client.close()


def test_two_servers_run_side_by_side(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path / "one") as one, EmbeddedMongo(tmp_path / "two") as two:
        assert one.port != two.port
        first: MongoClient[dict[str, Any]] = MongoClient(one.uri)
        second: MongoClient[dict[str, Any]] = MongoClient(two.uri)
        first["app"]["things"].insert_one({"_id": "only-in-one"})
        assert second["app"]["things"].count_documents({}) == 0
        first.close()
        second.close()


def test_a_given_port_is_used(tmp_path: Path) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with EmbeddedMongo(tmp_path, port=port) as server:
        assert server.uri == f"mongodb://127.0.0.1:{port}/"
        assert ping(server.uri)


def test_a_taken_port_fails_with_the_servers_own_words(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        server = EmbeddedMongo(tmp_path, port=taken.getsockname()[1])
        with pytest.raises(EmbeddedMongoError, match=r"(?s)exited with code.*in use"):
            server.start()
    assert server.pid is None
    assert not (tmp_path / PID_FILE_NAME).exists()


def test_a_stale_pid_file_does_not_block_a_start(tmp_path: Path) -> None:
    gone = dead_pid()
    (tmp_path / PID_FILE_NAME).write_text(json.dumps({"pid": gone, "owner_pid": gone, "port": 1}))
    (tmp_path / "nx-27017.pid").write_text(str(gone))

    with EmbeddedMongo(tmp_path) as server:
        assert ping(server.uri)
        assert json.loads((tmp_path / PID_FILE_NAME).read_text())["pid"] == server.pid


def test_a_pid_file_naming_someone_elses_process_leaves_it_alone(
    tmp_path: Path, bystander: subprocess.Popen[bytes]
) -> None:
    (tmp_path / PID_FILE_NAME).write_text(json.dumps({"pid": bystander.pid, "owner_pid": os.getpid()}))
    (tmp_path / "nx-27017.pid").write_text(str(bystander.pid))  # the server itself would refuse this

    with EmbeddedMongo(tmp_path) as server:
        assert ping(server.uri)
    assert bystander.poll() is None


def test_a_garbled_pid_file_does_not_block_a_start(tmp_path: Path) -> None:
    (tmp_path / PID_FILE_NAME).write_text("not json")

    with EmbeddedMongo(tmp_path) as server:
        assert ping(server.uri)


def test_a_server_orphaned_by_a_crashed_run_is_stopped(tmp_path: Path) -> None:
    orphaned = EmbeddedMongo(tmp_path)
    orphaned.start()
    try:
        orphan_pid = orphaned.pid
        assert orphan_pid is not None
        # What a run killed outright leaves: its server running, its pid file naming a dead owner.
        record = json.loads((tmp_path / PID_FILE_NAME).read_text())
        record["owner_pid"] = dead_pid()
        (tmp_path / PID_FILE_NAME).write_text(json.dumps(record))

        with EmbeddedMongo(tmp_path) as successor:
            assert orphaned.running is False
            assert ping(successor.uri)
            assert successor.pid != orphan_pid
    finally:
        orphaned.stop()


def test_a_data_directory_in_use_by_a_live_owner_is_refused(tmp_path: Path) -> None:
    with EmbeddedMongo(tmp_path) as first:
        second = EmbeddedMongo(tmp_path)
        with pytest.raises(EmbeddedMongoError, match="in use"):
            second.start()
        assert ping(first.uri)
        second.stop()


def test_the_uri_needs_a_port(tmp_path: Path) -> None:
    with pytest.raises(EmbeddedMongoError, match="no port"):
        _ = EmbeddedMongo(tmp_path).uri
