"""GraphiQL, served whole by the gateway: its page at /graphql, its files (shipped in the package) at /graphiql/.

The browser fetches nothing from anywhere else, so GraphiQL works where the gateway is the only host it can
reach. The files are GraphiQL's, React's, the explorer plugin's and graphql-ws's own builds, pinned and
listed with their SHA-256 in `static/graphiql/ASSETS.json`, their licences beside them.
"""

from __future__ import annotations

import html
from collections.abc import Mapping
from pathlib import Path

import orjson
from aiohttp import web

#: where the files are in the package, and where they are served
ASSETS_DIR = Path(__file__).parent / "static" / "graphiql"
ASSETS_URL = "/graphiql"

#: the query a new GraphiQL tab starts with; the README's "A first query" is this text
FIRST_QUERY = """{
  liveEvents(first: 10, filter: {statuses: [LIVE, SCHEDULED]}) {
    totalCount
    edges {
      node {
        id source status vendorStatus title scheduledStart isLive
        freshness { servedFrom ageSeconds stale }
        ... on StreamloopStream { state quality framerate }
        ... on LoopSession { brandId maxParticipants registeredCount }
      }
    }
    pageInfo { hasNextPage endCursor }
  }
  vendors { vendor configured reachable lastError }
}"""

#: the page loads what the gateway serves and talks to the gateway alone; styles may be inline (GraphiQL's
#: editors set them), fonts and icons are data: URLs inside GraphiQL's CSS
CONTENT_SECURITY_POLICY = "; ".join(
    [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    ]
)

_STYLES = ("graphiql.min.css", "plugin-explorer.css")
_SCRIPTS = (
    "react.production.min.js",
    "react-dom.production.min.js",
    "graphiql.min.js",
    "plugin-explorer.umd.js",
    "graphql-ws.min.js",
    "page.js",
)


def _script_json(value: object) -> str:
    """JSON that cannot end the <script> block it sits in, whatever its strings hold."""
    text = orjson.dumps(value).decode()
    return text.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


def graphiql_page(headers: Mapping[str, str], query: str = FIRST_QUERY, schema_url: str | None = None) -> str:
    """The page: every tab starts with `headers` and, when new, with `query`; with `schema_url`, GraphiQL reads
    the schema's introspection result there (where introspection is turned off) instead of asking for it."""
    styles = "\n".join(f'    <link rel="stylesheet" href="{ASSETS_URL}/{name}">' for name in _STYLES)
    scripts = "\n".join(f'    <script src="{ASSETS_URL}/{name}"></script>' for name in _SCRIPTS)
    config = _script_json({"headers": dict(headers), "query": query, "schemaUrl": schema_url})
    return f"""<!doctype html>
<html lang="en">
  <head>
    <meta charset="utf-8">
    <link rel="icon" href="data:,">
    <title>{html.escape("live-gateway · GraphiQL")}</title>
    <style>body {{ margin: 0; }} #graphiql {{ height: 100vh; }}</style>
{styles}
  </head>
  <body>
    <div id="graphiql">Loading GraphiQL...</div>
    <script id="graphiql-config" type="application/json">{config}</script>
{scripts}
  </body>
</html>
"""


def graphiql_response(page: str) -> web.Response:
    # The page may carry credentials (the demo's token): no cache keeps it, no other site frames it.
    return web.Response(
        text=page,
        content_type="text/html",
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "Cache-Control": "no-store",
            "Referrer-Policy": "no-referrer",
            "X-Content-Type-Options": "nosniff",
        },
    )


def add_graphiql_assets(app: web.Application) -> None:
    app.router.add_static(ASSETS_URL, ASSETS_DIR, append_version=False)
