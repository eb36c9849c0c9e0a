"""GraphiQL as the gateway serves it: every file from the gateway, pinned and licensed; the headers it opens with.

The browser test (tests/e2e, `make e2e`) drives it in Chromium; these check what the page and files are.
"""

from __future__ import annotations

import hashlib
import json
import re
import tomllib
from collections.abc import Callable
from fnmatch import fnmatch
from pathlib import Path
from typing import Any

import aiohttp

from gateway.graphiql import ASSETS_DIR, ASSETS_URL, FIRST_QUERY
from tests.gateway_harness import Gateway

ROOT = Path(__file__).resolve().parent.parent
BROWSER = {"Accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
CONTENT_TYPES = {".js": "application/javascript", ".css": "text/css"}


async def graphiql_page(gateway: Gateway) -> tuple[str, aiohttp.typedefs.LooseHeaders]:
    async with aiohttp.ClientSession() as anonymous, anonymous.get(f"{gateway.url}/graphql", headers=BROWSER) as resp:
        assert resp.status == 200
        return await resp.text(), resp.headers


def referenced(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


async def test_the_page_loads_everything_from_the_gateway(gateway: Gateway) -> None:
    page, headers = await graphiql_page(gateway)
    urls = referenced(page)
    assert "://" not in page.split("<body>")[0] + "".join(urls)
    files = [url for url in urls if url.startswith(f"{ASSETS_URL}/")]
    assert len(files) == 8  # GraphiQL's and the explorer's CSS, React, ReactDOM, GraphiQL, explorer, graphql-ws, page
    async with aiohttp.ClientSession() as anonymous:
        for url in files:
            async with anonymous.get(f"{gateway.url}{url}") as resp:
                assert resp.status == 200, url
                assert resp.content_type == CONTENT_TYPES[Path(url).suffix], url
                assert await resp.read() == (ASSETS_DIR / Path(url).name).read_bytes()
    policy = headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "script-src 'self'" in policy and "connect-src 'self'" in policy
    assert headers["Cache-Control"] == "no-store"


def test_each_file_is_the_pinned_release_with_its_licence() -> None:
    manifest = json.loads((ASSETS_DIR / "ASSETS.json").read_text())
    assert {entry["package"] for entry in manifest} == {
        "react",
        "react-dom",
        "graphiql",
        "@graphiql/plugin-explorer",
        "graphql-ws",
    }
    for entry in manifest:
        assert re.fullmatch(r"\d+\.\d+\.\d+", entry["version"]), entry
        assert hashlib.sha256((ASSETS_DIR / entry["file"]).read_bytes()).hexdigest() == entry["sha256"], entry
        licence = ASSETS_DIR / "licenses" / f"{entry['package'].lstrip('@').replace('/', '-')}.LICENSE"
        assert "MIT License" in licence.read_text() or "The MIT License" in licence.read_text(), licence
    notice = (ASSETS_DIR / "licenses" / "NOTICE").read_text()
    for entry in manifest:
        assert f"{entry['package']} {entry['version']}" in notice, entry
    shipped = {path.name for path in ASSETS_DIR.glob("*.js")} | {path.name for path in ASSETS_DIR.glob("*.css")}
    assert shipped == {entry["file"] for entry in manifest} | {"page.js"}


def test_the_files_are_package_data() -> None:
    """A wheel carries them: every file under static/ matches a package-data pattern."""
    patterns = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["gateway"]
    package = ROOT / "gateway"
    files = [path.relative_to(package).as_posix() for path in ASSETS_DIR.rglob("*") if path.is_file()]
    assert files
    unmatched = [name for name in files if not any(fnmatch(name, pattern) for pattern in patterns)]
    assert unmatched == []


async def test_the_page_opens_with_the_configured_headers_and_the_first_query(
    make_gateway: Callable[..., Any],
) -> None:
    hostile = 'Bearer x</script><script>alert("no")</script>'
    async with make_gateway(graphiql_headers={"Authorization": hostile}) as gw:
        page, _ = await graphiql_page(gw)
    config_block = re.search(r'<script id="graphiql-config" type="application/json">(.*?)</script>', page, re.S)
    assert config_block is not None
    config = json.loads(config_block.group(1))
    assert config == {"headers": {"Authorization": hostile}, "query": FIRST_QUERY, "schemaUrl": None}
    assert "<script>alert" not in page


async def test_without_configured_headers_the_page_carries_none(gateway: Gateway) -> None:
    page, _ = await graphiql_page(gateway)
    assert '"headers":{}' in page
    assert "Bearer" not in page


def test_the_readme_first_query_is_the_one_graphiql_opens_with() -> None:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## A first query", 1)[1]
    first_block = section.split("```graphql\n", 1)[1].split("```", 1)[0]
    assert first_block.strip() == FIRST_QUERY.strip()
