"""What a conformance check is, how checks run against a server, and the table they print.

A check exercises one filter, update or aggregation shape the store issues, through the store's own code,
among neighbour documents built to catch a wrong match. It gets a database of its own, empty, and raises
`ConformanceFailure` saying what the server did when the shape does not hold there.
"""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pymongo import AsyncMongoClient
from pymongo.errors import PyMongoError

from gateway.store.mongo import Database

CheckFunction = Callable[[Database], Awaitable[None]]


class ConformanceFailure(Exception):
    """The server answered a shape otherwise than the store relies on."""


def expect(holds: bool, what: str) -> None:
    """Fail the check with `what` (what the server did) unless `holds`."""
    if not holds:
        raise ConformanceFailure(what)


@dataclass(frozen=True, slots=True)
class Check:
    #: `<module>.<shape>`, unique among all checks
    name: str
    #: the shape, as the store issues it, in a line
    shape: str
    run: CheckFunction


def check(name: str, shape: str) -> Callable[[CheckFunction], Check]:
    """Make a function a `Check`; a module lists its checks in its own `CHECKS` tuple."""

    def make(function: CheckFunction) -> Check:
        return Check(name, shape, function)

    return make


@dataclass(frozen=True, slots=True)
class CheckResult:
    check: Check
    holds: bool
    detail: str
    seconds: float


async def run_check(db: Database, check: Check) -> CheckResult:
    started = time.perf_counter()
    try:
        await check.run(db)
    except ConformanceFailure as failure:
        return CheckResult(check, False, str(failure), time.perf_counter() - started)
    except PyMongoError as error:
        return CheckResult(check, False, f"the server refused it: {error}", time.perf_counter() - started)
    except Exception as error:  # a check that cannot run says why rather than stopping the others
        last = traceback.format_exception_only(error)[-1].strip()
        return CheckResult(check, False, f"the check broke: {last}", time.perf_counter() - started)
    return CheckResult(check, True, "", time.perf_counter() - started)


async def run_checks(
    client: AsyncMongoClient[dict[str, Any]], checks: Iterable[Check], database_prefix: str = "lgw_conformance"
) -> list[CheckResult]:
    """Run each check in a scratch database of its own on `client`'s server, dropped afterwards."""
    run_id = uuid.uuid4().hex[:8]
    results = []
    for number, each in enumerate(checks):
        name = f"{database_prefix}_{run_id}_{number}"
        try:
            results.append(await run_check(client.get_database(name), each))
        finally:
            await client.drop_database(name)
    return results


def format_table(results: Sequence[CheckResult]) -> str:
    """The results as a plain-text table: check, holds (yes/NO), shape, and what the server did."""
    rows = [("check", "holds", "shape", "what the server did")]
    rows += [(r.check.name, "yes" if r.holds else "NO", r.check.shape, r.detail) for r in results]
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    lines = []
    for number, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row[:3], widths, strict=True)]
        lines.append("  ".join([*cells, row[3]]).rstrip())
        if number == 0:
            lines.append("  ".join("-" * width for width in widths))
    held = sum(r.holds for r in results)
    lines.append(f"{held} of {len(results)} hold")
    return "\n".join(lines)
