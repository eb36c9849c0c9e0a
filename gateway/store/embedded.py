"""The embedded MongoDB: an nx-27017 server (the MongoDB wire protocol over SQLite) as a child process.

Its databases are files under `data_dir/db`; beside them it keeps its log and stderr and a pid file of
ours, so that a later start can recognise a server a crashed run left behind.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import TracebackType
from typing import Any

from pymongo import MongoClient
from pymongo.errors import PyMongoError

PID_FILE_NAME = "embedded-mongo.pid"
_SERVER_PID_FILE_NAME = "nx-27017.pid"  # the server's own; it refuses to start while that pid lives
_LOG_FILE_NAME = "nx-27017.log"
_STDERR_FILE_NAME = "nx-27017.stderr"
_DB_DIR_NAME = "db"
_STDERR_TAIL_CHARS = 4000
_AUTO_PORT_ATTEMPTS = 3


class EmbeddedMongoError(RuntimeError):
    """The embedded server could not be started (or its data directory is in use)."""


class EmbeddedMongo:
    def __init__(
        self,
        data_dir: Path,
        host: str = "127.0.0.1",
        port: int | None = None,
        *,
        start_timeout: float = 20.0,
        stop_grace: float = 5.0,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.host = host
        self._requested_port = port
        self._port: int | None = port
        self.start_timeout = start_timeout
        self.stop_grace = stop_grace
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def pid_file(self) -> Path:
        return self.data_dir / PID_FILE_NAME

    @property
    def port(self) -> int:
        if self._port is None:
            raise EmbeddedMongoError("the embedded MongoDB has no port until it is started")
        return self._port

    @property
    def uri(self) -> str:
        host = "127.0.0.1" if self.host in ("", "0.0.0.0") else self.host
        if ":" in host:
            host = f"[{host}]"
        return f"mongodb://{host}:{self.port}/"

    @property
    def pid(self) -> int | None:
        return None if self._process is None else self._process.pid

    @property
    def running(self) -> bool:
        return self._process is not None and self._process.poll() is None

    def start(self) -> None:
        """Start the server and wait until it answers a ping."""
        if self.running:
            return
        self._discard_process()  # one that died on its own since
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._clear_leftovers()
        attempts = 1 if self._requested_port is not None else _AUTO_PORT_ATTEMPTS
        for attempt in range(1, attempts + 1):
            self._port = self._requested_port or _free_port(self.host)
            self._spawn()
            try:
                self._wait_until_ready()
            except _ExitedEarly as exc:
                self._discard_process()
                # A port picked free can be taken before the child binds it; pick another.
                if attempt == attempts:
                    raise EmbeddedMongoError(str(exc)) from None
            except BaseException:
                self._discard_process()
                raise
            else:
                self._write_pid_file()
                atexit.register(self.stop)
                return

    def stop(self) -> None:
        """Stop the server: terminate, then kill after the grace period. Safe to call again."""
        process = self._process
        if process is None:
            return
        atexit.unregister(self.stop)
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=self.stop_grace)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        self._discard_process()
        self.pid_file.unlink(missing_ok=True)

    def __enter__(self) -> EmbeddedMongo:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    def _spawn(self) -> None:
        # Output goes to a file, never to a pipe nobody reads: a full pipe would block the server.
        with open(self.data_dir / _STDERR_FILE_NAME, "wb") as output:
            self._process = subprocess.Popen(
                [
                    *_server_command(),
                    "--data-dir",
                    str(self._db_dir),
                    "--host",
                    self.host,
                    "--port",
                    str(self._port),
                    "--pid-file",
                    str(self.data_dir / _SERVER_PID_FILE_NAME),
                    "--log-file",
                    str(self.data_dir / _LOG_FILE_NAME),
                ],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=output,
                cwd=self.data_dir,
                # Its own session: a Ctrl-C in the terminal goes to the whole foreground process group, and
                # the server must outlive the gateway's graceful stop, which still writes to it; `stop` ends it.
                start_new_session=True,
            )

    def _wait_until_ready(self) -> None:
        assert self._process is not None
        deadline = time.monotonic() + self.start_timeout
        client: MongoClient[dict[str, Any]] = MongoClient(
            self.uri, serverSelectionTimeoutMS=250, connectTimeoutMS=250, directConnection=True
        )
        try:
            while True:
                if self._process.poll() is not None:
                    raise _ExitedEarly(
                        f"nx-27017 exited with code {self._process.returncode} before answering on "
                        f"{self.uri}; its stderr:\n{self._stderr_tail()}"
                    )
                try:
                    client.admin.command("ping")
                    return
                except PyMongoError:
                    if time.monotonic() > deadline:
                        raise EmbeddedMongoError(
                            f"nx-27017 did not answer a ping on {self.uri} within {self.start_timeout}s;"
                            f" its stderr:\n{self._stderr_tail()}"
                        ) from None
                    time.sleep(0.05)
        finally:
            client.close()

    def _stderr_tail(self) -> str:
        try:
            text = (self.data_dir / _STDERR_FILE_NAME).read_text(errors="replace")
        except OSError:
            return "(unreadable)"
        return text[-_STDERR_TAIL_CHARS:] or "(empty)"

    def _discard_process(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.kill()
            self._process.wait()
        self._process = None
        # The server removes its pid file on a clean exit only.
        (self.data_dir / _SERVER_PID_FILE_NAME).unlink(missing_ok=True)

    def _write_pid_file(self) -> None:
        assert self._process is not None
        record = {"pid": self._process.pid, "owner_pid": os.getpid(), "host": self.host, "port": self._port}
        temporary = self.pid_file.with_suffix(".tmp")
        temporary.write_text(json.dumps(record))
        temporary.replace(self.pid_file)

    def _clear_leftovers(self) -> None:
        """Deal with what an earlier run left in the data directory.

        A pid file whose process is gone, or is some other program now, is stale and goes. A server of
        ours still running there is an orphan when the process that started it is gone (it crashed): it
        is stopped. If its owner still lives, the directory is in use and starting fails.
        """
        record = _read_pid_file(self.pid_file)
        server_pids = {_read_int(self.data_dir / _SERVER_PID_FILE_NAME)}
        if record is not None:
            server_pids.add(record.get("pid"))
        for pid in server_pids:
            if not isinstance(pid, int) or not self._is_our_server(pid):
                continue
            if record is not None and record.get("pid") == pid:
                owner = record.get("owner_pid")
                if isinstance(owner, int) and _is_alive(owner):
                    raise EmbeddedMongoError(
                        f"{self.data_dir} is in use: nx-27017 (pid {pid}, port {record.get('port')}) serves"
                        f" it for the running process {owner}"
                    )
            _terminate(pid, self.stop_grace)
        self.pid_file.unlink(missing_ok=True)
        (self.data_dir / _SERVER_PID_FILE_NAME).unlink(missing_ok=True)

    @property
    def _db_dir(self) -> Path:
        return self.data_dir / _DB_DIR_NAME

    def _is_our_server(self, pid: int) -> bool:
        """Whether `pid` is a live nx-27017 serving this data directory (not a reused pid)."""
        if not _is_alive(pid):
            return False
        args = _command_args(pid)
        launched_as_nx = any("nx-27017" in arg or "nx_27017" in arg for arg in args[:3])
        return launched_as_nx and str(self._db_dir) in args


class _ExitedEarly(Exception):
    pass


def _server_command() -> list[str]:
    """The nx-27017 console script beside this interpreter, else its entry point run by it."""
    script = Path(sys.executable).with_name("nx-27017.exe" if os.name == "nt" else "nx-27017")
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", "nx_27017.nx_27017"]


def _free_port(host: str) -> int:
    bind_host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    family = socket.AF_INET6 if ":" in bind_host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.bind((bind_host, 0))
        return int(probe.getsockname()[1])


def _read_pid_file(path: Path) -> dict[str, Any] | None:
    try:
        record = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _read_int(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (OSError, ValueError):
        return None


def _is_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, as another user's process
    # A zombie has exited already; only its parent has not collected it.
    with contextlib.suppress(OSError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rpartition(")")[2].split()[0] != "Z"
    return True


def _command_args(pid: int) -> list[str]:
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
        return raw.decode(errors="replace").rstrip("\0").split("\0")
    except OSError:
        pass
    try:  # no /proc (macOS, BSD): ps shows the arguments joined by spaces
        shown = subprocess.run(
            ["ps", "-o", "command=", "-p", str(pid)], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return []
    return shown.stdout.split()


def _terminate(pid: int, grace: float) -> None:
    """Stop a process that is not our child: SIGTERM, then SIGKILL after `grace` seconds."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while _is_alive(pid):
            if time.monotonic() > deadline:
                os.kill(pid, signal.SIGKILL)
                break
            time.sleep(0.05)
