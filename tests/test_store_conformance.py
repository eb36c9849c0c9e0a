"""The store's conformance checks against the server in use: the embedded one, or MONGODB_URI's.

The same checks `live-gateway check-store` runs; each builds neighbour documents that catch a wrong match.
"""

from __future__ import annotations

import socket
from typing import Any

import pytest

from gateway.cli import main
from gateway.store import conformance
from gateway.store.conformance import ALL_CHECKS, Check, ConformanceFailure, run_check

pytestmark = pytest.mark.mongodb


def test_every_check_has_a_unique_name() -> None:
    names = [each.name for each in ALL_CHECKS]
    assert len(names) == len(set(names))


@pytest.mark.parametrize("conformance_check", ALL_CHECKS, ids=lambda each: each.name)
async def test_the_shape_holds_on_the_server_in_use(mongo_db: Any, conformance_check: Check) -> None:
    result = await run_check(mongo_db, conformance_check)
    assert result.holds, f"{conformance_check.name} ({conformance_check.shape}): {result.detail}"


async def _never_holds(db: Any) -> None:
    raise ConformanceFailure("matched op_B, whose _id differs")


def test_check_store_prints_what_holds_and_fails_when_something_does_not(
    mongo_uri: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check-store", "--uri", mongo_uri])
    assert exited.value.code == 0
    table = capsys.readouterr().out
    assert f"{len(ALL_CHECKS)} of {len(ALL_CHECKS)} hold" in table
    assert all(f"{each.name} " in table for each in ALL_CHECKS)

    broken = Check("example.broken", "update_one({_id, $or: [...]})", _never_holds)
    monkeypatch.setattr(conformance, "ALL_CHECKS", (*ALL_CHECKS[:1], broken))
    with pytest.raises(SystemExit) as exited:
        main(["check-store", "--uri", mongo_uri])
    assert exited.value.code == 1
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("example.broken") and "NO" in line and "whose _id differs" in line for line in lines)
    assert lines[-1] == "1 of 2 hold"


def test_check_store_says_at_once_when_the_server_does_not_answer(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens here once it is closed
    with pytest.raises(SystemExit) as exited:
        main(["check-store", "--uri", f"mongodb://127.0.0.1:{port}/?directConnection=true", "--timeout", "0.3"])
    assert exited.value.code == 2
    captured = capsys.readouterr()
    assert "did not answer within 0.3 s" in captured.err
    assert "hold" not in captured.out


@pytest.mark.parametrize("uri", ["", "mongodb://", "http://127.0.0.1:27017/", "mongodb://127.0.0.1:99999/"], ids=repr)
def test_check_store_names_a_uri_it_cannot_use_in_one_line(uri: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check-store", "--uri", uri, "--timeout", "0.3"])
    assert exited.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("live-gateway check-store: --uri is not a MongoDB URI we can use: ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("timeout", ["-1", "nan"])
def test_check_store_refuses_a_timeout_that_is_not_a_duration(timeout: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["check-store", "--uri", "mongodb://127.0.0.1:1/", "--timeout", timeout])
    assert exited.value.code == 2
    assert "argument --timeout: must be 0 or more seconds" in capsys.readouterr().err
