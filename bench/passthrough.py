"""The least an aiohttp gateway does: what the floor of our latency targets is measured with (bench/floor.py).

`POST /read` takes `{"paths": [...]}`, reads each path at the vendors at once (one pooled, kept-alive client,
as the gateway's), decodes every answer and answers them in one JSON body. `POST /create` takes
`{"creates": [[path, body], ...]}` and does what a create must at the least to be safe at a vendor without
idempotency keys: one journal entry inserted in MongoDB before any vendor is called, the creates sent at
once, and their outcomes written in one compare-and-swap before answering. `POST /forward` sends the same
creates at once with no journal: the share of the HTTP parts alone. No GraphQL, no auth, no validation, no
normalizing, no cache: whatever this costs, any gateway made of these parts costs at least.

    .venv/bin/python -m bench.passthrough --port 8095 --vendors http://127.0.0.1:8081 --mongodb-uri mongodb://...
"""

from __future__ import annotations

import argparse
import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import aiohttp
import orjson
import uvloop
from aiohttp import web
from pymongo import AsyncMongoClient
from pymongo.asynchronous.collection import AsyncCollection

VENDORS = web.AppKey("vendors", str)
HEADERS = web.AppKey("headers", dict[str, str])
HTTP = web.AppKey("http", aiohttp.ClientSession)
JOURNAL = web.AppKey("journal", AsyncCollection[dict[str, Any]])


async def call(app: web.Application, method: str, path: str, body: Any = None) -> Any:
    """One vendor call, its answer decoded."""
    async with app[HTTP].request(method, app[VENDORS] + path, json=body, headers=app[HEADERS]) as resp:
        resp.raise_for_status()
        return orjson.loads(await resp.read())


async def read(request: web.Request) -> web.Response:
    paths: list[str] = orjson.loads(await request.read())["paths"]
    answers = await asyncio.gather(*(call(request.app, "GET", path) for path in paths))
    return web.Response(body=orjson.dumps({"data": answers}), content_type="application/json")


async def send_creates(app: web.Application, creates: list[list[Any]]) -> list[Any]:
    return await asyncio.gather(*(call(app, "POST", path, body) for path, body in creates))


async def forward(request: web.Request) -> web.Response:
    creates: list[list[Any]] = orjson.loads(await request.read())["creates"]
    made = await send_creates(request.app, creates)
    return web.Response(body=orjson.dumps({"data": made}), content_type="application/json")


async def create(request: web.Request) -> web.Response:
    creates: list[list[Any]] = orjson.loads(await request.read())["creates"]
    journal = request.app[JOURNAL]
    entry = {
        "_id": f"op_{uuid.uuid4().hex}",
        "rev": 1,
        "state": "RUNNING",
        "created_at": datetime.now(UTC),
        "targets": {str(n): {"state": "PENDING", "request": body} for n, (_, body) in enumerate(creates)},
    }
    await journal.insert_one(entry)
    made = await send_creates(request.app, creates)
    outcomes = {f"targets.{n}.state": "SUCCEEDED" for n in range(len(creates))}
    swapped = await journal.update_one(
        {"_id": entry["_id"], "rev": 1}, {"$set": {"rev": 2, "state": "DONE", **outcomes}}
    )
    if swapped.matched_count != 1:
        raise web.HTTPConflict()
    return web.Response(body=orjson.dumps({"data": made}), content_type="application/json")


async def health(_: web.Request) -> web.Response:
    return web.Response(text="ok")


def create_app(vendors: str, token: str, mongodb_uri: str, database: str = "passthrough") -> web.Application:
    app = web.Application()
    app[VENDORS] = vendors.rstrip("/")
    app[HEADERS] = {"Authorization": f"Bearer {token}"}

    async def clients(app: web.Application) -> AsyncIterator[None]:
        mongo: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_uri, tz_aware=True)
        app[JOURNAL] = mongo[database]["operations"]
        async with aiohttp.ClientSession() as http:
            app[HTTP] = http
            yield
        await mongo.close()

    app.cleanup_ctx.append(clients)
    app.router.add_post("/read", read)
    app.router.add_post("/create", create)
    app.router.add_post("/forward", forward)
    app.router.add_get("/health", health)
    return app


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=8095)
    parser.add_argument("--vendors", required=True, help="the simulators' base URL")
    parser.add_argument("--token", default="sim-token")
    parser.add_argument("--mongodb-uri", required=True)
    args = parser.parse_args()
    app = create_app(args.vendors, args.token, args.mongodb_uri)
    # The gateway's own event loop and server settings: uvloop, no access log.
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()
