"""The browser tests: `make e2e` (they need Chromium and Playwright, which `make test` does not install)."""

from __future__ import annotations

from pathlib import Path

import pytest

#: screenshots, kept by CI as artefacts (not in git)
OUTPUT = Path(__file__).parent / "output"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)
