"""The store's conformance checks: every filter, update and aggregation shape the store issues, run
against a server to tell whether it keeps the meaning the store relies on.

`live-gateway check-store` and the test suite run `ALL_CHECKS`; each module of checks lists its own in a
`CHECKS` tuple, joined here.
"""

from __future__ import annotations

from gateway.store.conformance import changes, claims, events, journal, leases, reads, records
from gateway.store.conformance.registry import (
    Check,
    CheckResult,
    ConformanceFailure,
    check,
    expect,
    format_table,
    run_check,
    run_checks,
)

ALL_CHECKS: tuple[Check, ...] = (
    *journal.CHECKS,
    *leases.CHECKS,
    *claims.CHECKS,
    *changes.CHECKS,
    *events.CHECKS,
    *reads.CHECKS,
    *records.CHECKS,
)

__all__ = [
    "ALL_CHECKS",
    "Check",
    "CheckResult",
    "ConformanceFailure",
    "check",
    "expect",
    "format_table",
    "run_check",
    "run_checks",
]
