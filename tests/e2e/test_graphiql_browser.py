"""GraphiQL in headless Chromium, on a machine where the gateway is the only host the browser can reach.

It loads the demo's GraphiQL, sees the schema in the docs pane, runs the README's first query, runs the demo's
subscription in a new tab, starts a stream in the simulators and sees the update arrive in that tab.
"""

from __future__ import annotations

import json
import re
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, Route, expect, sync_playwright

from gateway.cli import SUBSCRIPTION
from gateway.ids import encode_global_id
from gateway.model import Source
from tests.demo_harness import Demo, running_demo
from tests.e2e.conftest import OUTPUT

ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
#: how long the browser may take for one step on a busy machine (each takes about a second)
STEP_MS = 60_000


def readme_first_query() -> str:
    section = (ROOT / "README.md").read_text().split("## A first query", 1)[1]
    return section.split("```graphql\n", 1)[1].split("```", 1)[0].strip()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    with running_demo(tmp_path_factory.mktemp("demo")) as running:
        yield running


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        # No host but this machine can be reached: every name resolves to nothing, and every connection
        # elsewhere (an address, a websocket) goes to a proxy that is not there; Chromium never proxies loopback.
        chromium = playwright.chromium.launch(
            executable_path=CHROMIUM,
            args=["--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1", "--proxy-server=http://127.0.0.1:9"],
        )
        try:
            yield chromium
        finally:
            chromium.close()


#: the CodeMirror editor on show under a selector (GraphiQL keeps a hidden one beside the one shown)
SHOWN_EDITOR = """(selector) => [...document.querySelectorAll(selector + ' .CodeMirror')]
    .find((node) => !node.parentElement.classList.contains('hidden')).CodeMirror"""


def editor_text(page: Page, selector: str) -> str:
    text: str = page.evaluate(f"(selector) => ({SHOWN_EDITOR})(selector).getValue()", selector)
    return text


def set_editor_text(page: Page, selector: str, text: str) -> None:
    page.evaluate(f"([selector, text]) => ({SHOWN_EDITOR})(selector).setValue(text)", [selector, text])


def response_json(page: Page) -> Any:
    text = editor_text(page, ".result-window")
    return json.loads(text) if text.strip().startswith("{") else None


def wait_for_response(page: Page, accept: Any) -> Any:
    """The answer in the response pane once `accept` takes it."""
    handle = page.wait_for_function(
        """() => {
            const node = document.querySelector('.result-window .CodeMirror');
            return node && node.CodeMirror.getValue().trim().startsWith('{') ? node.CodeMirror.getValue() : null;
        }""",
        timeout=STEP_MS,
    )
    answer = json.loads(handle.json_value())
    if not accept(answer):
        page.wait_for_timeout(500)
        return wait_for_response(page, accept)
    return answer


def test_graphiql_works_offline_signed_in_and_shows_a_subscription_update(demo: Demo, browser: Browser) -> None:
    OUTPUT.mkdir(exist_ok=True)
    gateway_host = urlsplit(demo.url).netloc
    elsewhere: list[str] = []

    def only_the_gateway(route: Route) -> None:
        if urlsplit(route.request.url).netloc == gateway_host:
            route.continue_()
        else:
            elsewhere.append(route.request.url)
            route.abort("blockedbyclient")

    context = browser.new_context(viewport={"width": 1440, "height": 900})
    context.route("**/*", only_the_gateway)
    page = context.new_page()
    problems: list[str] = []
    page.on("pageerror", lambda error: problems.append(f"page error: {error}"))
    page.on("console", lambda message: message.type == "error" and problems.append(f"console: {message.text}"))

    # GraphiQL, signed in: the first tab's headers hold the demo's token.
    page.goto(f"{demo.url}/graphql")
    expect(page.locator(".graphiql-container")).to_be_visible(timeout=STEP_MS)
    expect(page.locator(".graphiql-editor-tool")).to_be_visible(timeout=STEP_MS)
    headers = json.loads(editor_text(page, ".graphiql-editor-tool"))
    assert headers == {"Authorization": f"Bearer {demo.bearer}"}

    # The schema is in the docs pane.
    page.locator('button[aria-label$="Documentation Explorer"]').click()
    docs = page.locator(".graphiql-doc-explorer")
    docs.locator(".graphiql-doc-explorer-type-name", has_text=re.compile(r"^Query$")).click(timeout=STEP_MS)
    expect(docs.locator(".graphiql-doc-explorer-field-name", has_text=re.compile(r"^liveEvents$"))).to_be_visible()
    expect(docs).to_contain_text("at most 100")  # the description of liveEvents' `first`
    page.screenshot(path=OUTPUT / "1-docs.png")

    # The README's first query, run from the first tab.
    set_editor_text(page, ".graphiql-query-editor", readme_first_query())
    page.locator(".graphiql-execute-button").click()
    answer = wait_for_response(page, lambda body: "data" in body or "errors" in body)
    assert "errors" not in answer, answer
    listing = answer["data"]["liveEvents"]
    assert listing["totalCount"] > 0 and listing["edges"]
    assert {node["node"]["status"] for node in listing["edges"]} <= {"LIVE", "SCHEDULED"}
    assert {vendor["vendor"] for vendor in answer["data"]["vendors"]} == {"LOOP", "STREAMLOOP", "LIVEPUSH"}
    page.screenshot(path=OUTPUT / "2-first-query.png")

    # A new tab starts signed in too, and runs the demo's subscription.
    page.locator('button[aria-label="Add tab"]').click()
    expect(page.locator(".graphiql-tab")).to_have_count(2, timeout=STEP_MS)
    assert json.loads(editor_text(page, ".graphiql-editor-tool")) == headers
    set_editor_text(page, ".graphiql-query-editor", SUBSCRIPTION)
    page.locator(".graphiql-execute-button").click()
    page.wait_for_timeout(1500)  # the socket opens and connection_init is acknowledged
    assert response_json(page) is None  # nothing yet, and no error

    # Start the stream the demo names, as its printed curl does; the update arrives in the tab.
    start = demo.printed(r"curl -X POST -H 'Authorization: Bearer sim-token' (\S+/start)")
    request = urllib.request.Request(start, method="POST", headers={"Authorization": "Bearer sim-token"})
    with urllib.request.urlopen(request, timeout=30) as started:
        assert started.status in (200, 202)
    stream_id = start.rsplit("/", 2)[-2]
    update = wait_for_response(page, lambda body: "data" in body or "errors" in body)
    assert "errors" not in update, update
    event = update["data"]["liveEventUpdated"]
    assert event["id"] == encode_global_id(Source.STREAMLOOP_STREAM, stream_id)
    assert event["status"] in ("STARTING", "LIVE") and event["isLive"] is True
    page.screenshot(path=OUTPUT / "3-subscription-update.png")

    assert elsewhere == []
    assert problems == []
    context.close()


def test_the_schema_loads_when_credentials_arrive_and_a_refused_subscription_says_why(
    demo: Demo, browser: Browser
) -> None:
    OUTPUT.mkdir(exist_ok=True)
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.goto(f"{demo.url}/graphql")
    expect(page.locator(".graphiql-editor-tool")).to_be_visible(timeout=STEP_MS)
    page.locator('button[aria-label$="Documentation Explorer"]').click()
    docs = page.locator(".graphiql-doc-explorer")
    expect(docs.locator(".graphiql-doc-explorer-type-name", has_text=re.compile(r"^Query$"))).to_be_visible(
        timeout=STEP_MS
    )

    # Without credentials the schema cannot be read; with them again, it is read at once, with no click.
    set_editor_text(page, ".graphiql-editor-tool", "{}")
    expect(page.locator(".graphiql-doc-explorer-error")).to_be_visible(timeout=STEP_MS)
    page.screenshot(path=OUTPUT / "4-no-credentials.png")
    set_editor_text(page, ".graphiql-editor-tool", json.dumps({"Authorization": f"Bearer {demo.bearer}"}))
    expect(docs.locator(".graphiql-doc-explorer-type-name", has_text=re.compile(r"^Query$"))).to_be_visible(
        timeout=STEP_MS
    )
    expect(page.locator(".graphiql-doc-explorer-error")).to_have_count(0)

    # A subscription whose connection_init the gateway refuses ends with the reason, not a spinner.
    set_editor_text(page, ".graphiql-editor-tool", json.dumps({"Authorization": "Bearer not-a-token"}))
    set_editor_text(page, ".graphiql-query-editor", SUBSCRIPTION)
    page.locator(".graphiql-execute-button").click()
    page.wait_for_function(
        """() => document.querySelector('.result-window .CodeMirror').CodeMirror.getValue().includes('4403')""",
        timeout=STEP_MS,
    )
    assert "the gateway closed the subscription's socket (4403" in editor_text(page, ".result-window")
    page.screenshot(path=OUTPUT / "5-refused-subscription.png")
    context.close()
