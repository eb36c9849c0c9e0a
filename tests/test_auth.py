"""Who gets in, and what each role may do: bearer JWTs, API keys, roles on fields, the rate limit."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from gateway.auth import Authenticator, hash_api_key
from gateway.errors import Unauthenticated
from gateway.settings import ApiKey, AuthSettings, ConfigurationError, LimitSettings, Role
from tests.conftest import SIM_TOKEN, Sim
from tests.gateway_harness import JWT_SECRET, Gateway, auth_header, token_for
from tests.test_mutations import create_input

QUERY = "{ vendors { vendor } }"
MUTATION = 'mutation { refreshLiveEvent(id: "U1RSRUFNTE9PUF9TVFJFQU06bm9wZQ") { event { id } } }'
ADMIN_QUERY = '{ liveEventOperation(id: "op_nothing") { id } }'
CREATE = """mutation($input: CreateLiveEventInput!, $key: String) {
  createLiveEvent(input: $input, idempotencyKey: $key) { operationId failures { source code } }
}"""


async def post(gw: Gateway, query: str, headers: dict[str, str], variables: dict[str, Any] | None = None) -> Any:
    # A session of its own: the harness's session carries an admin token.
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{gw.url}/graphql", json={"query": query, "variables": variables or {}}, headers=headers) as resp,
    ):
        return resp.status, dict(resp.headers), await resp.json(content_type=None)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def claims(**overrides: Any) -> dict[str, Any]:
    now = int(time.time())
    values: dict[str, Any] = {"sub": "alice", "role": "viewer", "iat": now, "nbf": now, "exp": now + 600}
    values.update(overrides)
    return {k: v for k, v in values.items() if v is not None}


@pytest.mark.parametrize(
    ("headers", "message"),
    [
        ({}, "credentials required"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "must be `Bearer <token>`"),
        (bearer("not-a-jwt"), "not a JWT"),
        (bearer(jwt.encode(claims(exp=int(time.time()) - 3600), JWT_SECRET, algorithm="HS256")), "expired"),
        (bearer(jwt.encode(claims(nbf=int(time.time()) + 3600), JWT_SECRET, algorithm="HS256")), "not valid yet"),
        (bearer(jwt.encode(claims(), "some-other-secret-of-32-bytes-len", algorithm="HS256")), "does not verify"),
        (bearer(jwt.encode(claims(exp=None), JWT_SECRET, algorithm="HS256")), "'exp'"),
        (bearer(jwt.encode(claims(role="superuser"), JWT_SECRET, algorithm="HS256")), "names no known role"),
        (bearer(jwt.encode(claims(), JWT_SECRET * 2, algorithm="HS384")), "HS384"),
        (bearer(jwt.encode(claims(), "", algorithm="none")), "'none'"),
        ({"X-API-Key": "lg_unknown"}, "unknown API key"),
    ],
    ids=[
        "none",
        "basic",
        "garbage",
        "expired",
        "not-yet",
        "wrong-signature",
        "no-exp",
        "unknown-role",
        "other-alg",
        "alg-none",
        "unknown-api-key",
    ],
)
async def test_bad_credentials_are_401_and_reach_no_vendor(
    gateway: Gateway, sim: Sim, headers: dict[str, str], message: str
) -> None:
    before = await sim.vendor_requests()
    status, response_headers, body = await post(gateway, QUERY + " { liveEvents { totalCount } }", headers)
    assert status == 401
    assert response_headers["WWW-Authenticate"].startswith("Bearer")
    assert "data" not in body
    [error] = body["errors"]
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    assert message in error["message"]
    assert await sim.vendor_requests() == before


async def test_audience_and_issuer_are_checked(make_gateway: Callable[..., Any]) -> None:
    auth = AuthSettings(jwt_secret=JWT_SECRET, audience="live-gateway", issuer="https://id.example")
    async with make_gateway(auth=auth) as gw:
        good = jwt.encode(claims(aud="live-gateway", iss="https://id.example"), JWT_SECRET, algorithm="HS256")
        wrong_aud = jwt.encode(claims(aud="someone-else", iss="https://id.example"), JWT_SECRET, algorithm="HS256")
        wrong_iss = jwt.encode(claims(aud="live-gateway", iss="https://evil.example"), JWT_SECRET, algorithm="HS256")
        no_aud = jwt.encode(claims(iss="https://id.example"), JWT_SECRET, algorithm="HS256")
        assert (await post(gw, QUERY, bearer(good)))[0] == 200
        for token, message in ((wrong_aud, "another audience"), (wrong_iss, "another issuer"), (no_aud, "'aud'")):
            status, _, body = await post(gw, QUERY, bearer(token))
            assert status == 401, message
            assert message in body["errors"][0]["message"]


ROLE_CASES = [
    # role, query allowed, mutation allowed, admin field allowed
    (Role.VIEWER, True, False, False),
    (Role.OPERATOR, True, True, False),
    (Role.ADMIN, True, True, True),
]


@pytest.mark.parametrize(("role", "query_ok", "mutation_ok", "admin_ok"), ROLE_CASES, ids=[r[0] for r in ROLE_CASES])
async def test_each_role_on_a_query_a_mutation_and_the_journal(
    gateway: Gateway, role: Role, query_ok: bool, mutation_ok: bool, admin_ok: bool
) -> None:
    headers = bearer(token_for(role))
    for query, allowed, field in (
        (QUERY, query_ok, "vendors"),
        (MUTATION, mutation_ok, "refreshLiveEvent"),
        (ADMIN_QUERY, admin_ok, "liveEventOperation"),
    ):
        status, _, body = await post(gateway, query, headers)
        assert status == 200
        errors = [e for e in body.get("errors", []) if e["extensions"]["code"] == "FORBIDDEN"]
        if allowed:
            assert errors == [], (role, field, body)
        else:
            assert body["data"] in (None, {field: None})
            assert errors[0]["path"] == [field]
            assert "role" in errors[0]["message"]


async def test_a_viewer_cannot_create_and_no_vendor_is_called(gateway: Gateway, sim: Sim) -> None:
    before = await sim.vendor_requests()
    _, _, body = await post(gateway, CREATE, bearer(token_for(Role.VIEWER)), {"input": create_input()})
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"
    assert await sim.vendor_requests() == before
    assert await gateway.services.store.journal.collection.count_documents({}) == 0


async def test_idempotency_keys_belong_to_their_caller(gateway: Gateway) -> None:
    variables = {"input": create_input(livepush={"category": "SIMULCAST"}), "key": "same-key"}
    alice = bearer(token_for(Role.OPERATOR, subject="alice"))
    bob = bearer(token_for(Role.OPERATOR, subject="bob"))
    first = (await post(gateway, CREATE, alice, variables))[2]["data"]["createLiveEvent"]
    again = (await post(gateway, CREATE, alice, variables))[2]["data"]["createLiveEvent"]
    other = (await post(gateway, CREATE, bob, variables))[2]["data"]["createLiveEvent"]
    assert again["operationId"] == first["operationId"]
    assert other["operationId"] != first["operationId"]


def rsa_keys() -> tuple[Any, str]:
    private = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public_pem = (
        private.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
    return private, public_pem


async def test_rs256_with_a_public_key(make_gateway: Callable[..., Any]) -> None:
    private, public_pem = rsa_keys()
    other_private, _ = rsa_keys()
    async with make_gateway(auth=AuthSettings(jwt_public_key=public_pem)) as gw:
        good = jwt.encode(claims(role="operator"), private, algorithm="RS256")
        forged = jwt.encode(claims(role="operator"), other_private, algorithm="RS256")
        assert (await post(gw, QUERY, bearer(good)))[0] == 200
        assert (await post(gw, QUERY, bearer(forged)))[0] == 401
        # An HS256 token signed with the public key as its secret is the classic confusion attack.
        confused = jwt.encode(claims(), "x" * 64, algorithm="HS256")
        assert (await post(gw, QUERY, bearer(confused)))[0] == 401


async def test_rs256_with_a_jwks_file(make_gateway: Callable[..., Any], tmp_path: Path) -> None:
    first, _ = rsa_keys()
    second, _ = rsa_keys()
    keys = []
    for kid, private in (("k1", first), ("k2", second)):
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
        keys.append({**jwk, "kid": kid, "use": "sig", "alg": "RS256"})
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps({"keys": keys}))
    async with make_gateway(auth=AuthSettings(jwks_file=jwks)) as gw:
        for kid, private in (("k1", first), ("k2", second)):
            token = jwt.encode(claims(), private, algorithm="RS256", headers={"kid": kid})
            assert (await post(gw, QUERY, bearer(token)))[0] == 200
        mismatched = jwt.encode(claims(), first, algorithm="RS256", headers={"kid": "k2"})
        unknown = jwt.encode(claims(), first, algorithm="RS256", headers={"kid": "k9"})
        assert (await post(gw, QUERY, bearer(mismatched)))[0] == 401
        status, _, body = await post(gw, QUERY, bearer(unknown))
        assert status == 401 and "unknown key" in body["errors"][0]["message"]


async def test_api_keys_are_kept_hashed_and_carry_a_role(make_gateway: Callable[..., Any]) -> None:
    key = "lg_dashboard-key-0123456789"
    auth = AuthSettings(api_keys=[ApiKey(name="dashboard", sha256=hash_api_key(key), role=Role.VIEWER)])
    assert key not in auth.model_dump_json()
    async with make_gateway(auth=auth) as gw:
        status, _, body = await post(gw, QUERY, {"X-API-Key": key})
        assert status == 200 and body["data"]["vendors"]
        _, _, body = await post(gw, MUTATION, {"X-API-Key": key})
        assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_the_rate_limit_is_per_caller_with_retry_after(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway(limits=LimitSettings(rate_limit="3/minute")) as gw:
        alice, bob = bearer(token_for(Role.VIEWER, "alice")), bearer(token_for(Role.VIEWER, "bob"))
        statuses = [(await post(gw, QUERY, alice))[0] for _ in range(3)]
        status, headers, body = await post(gw, QUERY, alice)
        assert statuses == [200, 200, 200]
        assert status == 429
        assert 1 <= int(headers["Retry-After"]) <= 60
        assert body["errors"][0]["extensions"]["code"] == "RATE_LIMITED"
        assert body["errors"][0]["extensions"]["retryAfter"] == int(headers["Retry-After"])
        assert (await post(gw, QUERY, bob))[0] == 200


async def test_auth_off_lets_everyone_in_as_admin(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway(auth=AuthSettings(enabled=False)) as gw:
        _, _, body = await post(gw, ADMIN_QUERY, {})
        assert body == {"data": {"liveEventOperation": None}}


async def test_auth_on_without_credentials_refuses_to_start(make_gateway: Callable[..., Any]) -> None:
    with pytest.raises(RuntimeError, match="no credentials are configured"):
        async with make_gateway(auth=AuthSettings()):
            pass


async def test_the_graphiql_page_and_health_need_no_credentials(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{gateway.url}/graphql", headers={"Accept": "text/html"}) as resp:
            assert resp.status == 200 and "graphiql" in (await resp.text()).lower()
        async with http.get(f"{gateway.url}/graphql", params={"query": QUERY}) as resp:
            assert resp.status == 401
        for path in ("/healthz", "/readyz", "/metrics"):
            async with http.get(f"{gateway.url}{path}") as resp:
                assert resp.status == 200, path


async def test_secrets_never_appear_in_answers_or_logs(
    make_gateway: Callable[..., Any], sim: Sim, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    async with make_gateway() as gw:
        await sim.control("POST", "faults", {"streamloop": {"unauthorized": True}, "livepush": {"error_burst": 50}})
        texts = []
        for headers in ({}, bearer("x.y.z"), bearer(token_for(Role.ADMIN))):
            answer = await post(gw, "{ liveEvents { edges { node { id } } } vendors { lastError } }", headers)
            texts.append(json.dumps(answer[2]))
        async with gw.http.get(f"{gw.url}/readyz") as resp:
            texts.append(await resp.text())
        async with gw.http.get(f"{gw.url}/metrics") as resp:
            texts.append(await resp.text())
    texts.append(caplog.text)
    everything = "\n".join(texts)
    assert "VENDOR_NOT_CONFIGURED" in everything  # the vendor's 401 is reported ...
    for secret in (SIM_TOKEN, JWT_SECRET):
        assert secret not in everything  # ... without the credentials involved


async def ws_handshake(gw: Gateway, headers: dict[str, str], payload: dict[str, Any]) -> tuple[str, Any]:
    """Connects with `headers`, sends `connection_init` with `payload` and subscribes; what came back."""
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(f"{gw.url}/graphql", protocols=["graphql-transport-ws"], headers=headers) as ws,
    ):
        await ws.send_json({"type": "connection_init", "payload": payload})
        message = await ws.receive(timeout=5)
        if message.type != aiohttp.WSMsgType.TEXT:
            return "closed", ws.close_code
        assert json.loads(message.data)["type"] == "connection_ack"
        query = "subscription { liveEventStatsUpdated { total } }"
        await ws.send_json({"id": "1", "type": "subscribe", "payload": {"query": query}})
        answer = json.loads((await ws.receive(timeout=5)).data)
        return answer["type"], answer["payload"]


async def test_websocket_credentials_come_in_connection_init_or_the_handshake(gateway: Gateway) -> None:
    viewer = token_for(Role.VIEWER)
    # A browser cannot set headers on a websocket, so the token rides in the connection_init payload ...
    kind, payload = await ws_handshake(gateway, {}, {"Authorization": f"Bearer {viewer}"})
    assert kind == "next" and payload["data"]["liveEventStatsUpdated"]["total"] >= 0
    # ... also nested under "headers", as some clients send it ...
    kind, _ = await ws_handshake(gateway, {}, {"headers": {"authorization": f"Bearer {viewer}"}})
    assert kind == "next"
    # ... or, for other clients, on the upgrade request itself.
    kind, _ = await ws_handshake(gateway, bearer(viewer), {})
    assert kind == "next"


async def test_websocket_without_good_credentials_is_closed_4403(gateway: Gateway) -> None:
    expired = jwt.encode(claims(exp=int(time.time()) - 3600), JWT_SECRET, algorithm="HS256")
    for payload in ({}, {"Authorization": f"Bearer {expired}"}, {"X-API-Key": "lg_unknown"}):
        assert await ws_handshake(gateway, {}, payload) == ("closed", 4403)


async def test_a_bad_handshake_header_is_401_before_the_upgrade(gateway: Gateway) -> None:
    async with aiohttp.ClientSession() as http:
        with pytest.raises(aiohttp.WSServerHandshakeError) as raised:
            await http.ws_connect(f"{gateway.url}/graphql", protocols=["graphql-transport-ws"], headers=bearer("x"))
    assert raised.value.status == 401


def test_a_remembered_token_still_expires() -> None:
    from gateway.auth import Authenticator

    authenticator = Authenticator(AuthSettings(jwt_secret=JWT_SECRET, leeway=0))
    now = time.time()
    token = jwt.encode(claims(exp=now + 1), JWT_SECRET, algorithm="HS256")
    assert authenticator.authenticate(f"Bearer {token}", None).name == "sub:alice"
    assert authenticator.authenticate(f"Bearer {token}", None).name == "sub:alice"  # remembered
    time.sleep(max(0.0, now + 1.05 - time.time()))
    with pytest.raises(Unauthenticated, match="expired"):
        authenticator.authenticate(f"Bearer {token}", None)


@pytest.mark.parametrize("secret", ["x", "s" * 31, "é" * 15])
def test_a_short_hs256_secret_is_refused_at_start(secret: str) -> None:
    with pytest.raises(ConfigurationError, match="at least 32 bytes"):
        Authenticator(AuthSettings(jwt_secret=secret)).check_configured()
    # 16 characters of two bytes each are 32 bytes: the length is counted in bytes, as HMAC sees it.
    Authenticator(AuthSettings(jwt_secret="é" * 16)).check_configured()


def test_serve_with_a_short_secret_exits_with_one_line(tmp_path: Path) -> None:
    env = {
        "PATH": os.environ["PATH"],
        "LIVE_GATEWAY_AUTH__JWT_SECRET": "too-short",
        "LIVE_GATEWAY_MONGODB_URI": "mongodb://127.0.0.1:1/",
    }
    done = subprocess.run(
        [sys.executable, "-m", "gateway.cli", "serve", "--port", "0"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode != 0
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert "LIVE_GATEWAY_AUTH__JWT_SECRET" in lines[0] and "32 bytes" in lines[0]


#: headers that make a plain request look like (part of) a websocket handshake
HANDSHAKE_TRICKS = {
    "upgrade": {"Upgrade": "websocket"},
    "upgrade-mixed-case": {"Upgrade": "WebSocket"},
    "upgrade-connection": {"Upgrade": "websocket", "Connection": "Upgrade"},
    "upgrade-connection-version": {
        "Upgrade": "websocket",
        "Connection": "keep-alive, Upgrade",
        "Sec-WebSocket-Version": "13",
    },
    "sec-websocket-only": {"Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==", "Sec-WebSocket-Version": "13"},
    "sec-websocket-protocol": {"Upgrade": "websocket", "Sec-WebSocket-Protocol": "graphql-transport-ws"},
    "bad-key": {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "short",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": "graphql-transport-ws",
    },
    "old-version": {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "8",
        "Sec-WebSocket-Protocol": "graphql-transport-ws",
    },
}
INTROSPECTION = "{ __schema { types { name } } }"


async def trick(gw: Gateway, method: str, headers: dict[str, str]) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as http:
        if method == "GET":
            request = http.get(f"{gw.url}/graphql", params={"query": INTROSPECTION}, headers=headers)
        else:
            request = http.post(f"{gw.url}/graphql", json={"query": INTROSPECTION}, headers=headers)
        async with request as resp:
            return resp.status, await resp.json(content_type=None)


@pytest.mark.parametrize("method", ["GET", "POST"])
@pytest.mark.parametrize("headers", list(HANDSHAKE_TRICKS.values()), ids=list(HANDSHAKE_TRICKS))
async def test_no_credentials_with_any_header_trick_is_401(
    gateway: Gateway, sim: Sim, method: str, headers: dict[str, str]
) -> None:
    before = await sim.vendor_requests()
    status, body = await trick(gateway, method, headers)
    assert status == 401, body
    assert "data" not in body
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert await sim.vendor_requests() == before


async def test_a_whole_handshake_on_a_post_is_no_websocket(gateway: Gateway) -> None:
    # aiohttp would upgrade it; RFC 6455 knows only GET, and so does the gateway.
    whole = {
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Protocol": "graphql-transport-ws",
    }
    status, body = await trick(gateway, "POST", whole)
    assert status == 401 and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_header_trick_does_not_escape_the_rate_limit(make_gateway: Callable[..., Any]) -> None:
    async with make_gateway(limits=LimitSettings(rate_limit="2/minute")) as gw:
        viewer = bearer(token_for(Role.VIEWER, "mallory"))
        statuses = [
            (await trick(gw, "POST", {**viewer, **HANDSHAKE_TRICKS["upgrade-connection"]}))[0] for _ in range(4)
        ]
        assert statuses == [200, 200, 429, 429]


async def test_the_journal_is_every_admins_and_names_who_made_each_operation(gateway: Gateway, sim: Sim) -> None:
    # An operator creates (a failing target, so there is something to retry) ...
    await sim.control("POST", "faults", {"livepush": {"reject_status": 400}})
    created = await post(
        gateway,
        CREATE,
        auth_header(Role.OPERATOR, subject="alice"),
        {"input": create_input(livepush={"category": "SIMULCAST"}), "key": None},
    )
    payload = created[2]["data"]["createLiveEvent"]
    assert payload["failures"] == [{"source": "LIVEPUSH_STREAM", "code": "VENDOR_REJECTED"}]
    await sim.control("POST", "faults", {"livepush": {}})
    read = "query($id: ID!) { liveEventOperation(id: $id) { id createdBy targets { state } } }"
    retry = "mutation($id: ID!) { retryLiveEventOperation(operationId: $id) { createdBy targets { state } } }"
    # ... and any admin, not only one who made it, reads it and retries it: the journal is the gateway's record.
    for admin in ("bob", "carol"):
        _, _, body = await post(gateway, read, auth_header(Role.ADMIN, subject=admin), {"id": payload["operationId"]})
        operation = body["data"]["liveEventOperation"]
        assert operation["createdBy"] == "sub:alice"
    _, _, body = await post(gateway, retry, auth_header(Role.ADMIN, subject="bob"), {"id": payload["operationId"]})
    assert body["data"]["retryLiveEventOperation"] == {"createdBy": "sub:alice", "targets": [{"state": "SUCCEEDED"}]}
    # The one who made it, an operator, may not read it.
    _, _, body = await post(gateway, read, auth_header(Role.OPERATOR, subject="alice"), {"id": payload["operationId"]})
    assert body["data"]["liveEventOperation"] is None
    assert body["errors"][0]["extensions"]["code"] == "FORBIDDEN"


WHOLE_HANDSHAKE = {
    "Upgrade": "websocket",
    "Connection": "Upgrade",
    "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    "Sec-WebSocket-Version": "13",
    "Sec-WebSocket-Protocol": "graphql-transport-ws",
}


@pytest.mark.parametrize("path", ["/schema.graphql", "/possible-types.json"])
@pytest.mark.parametrize(
    "headers", [{"Accept": "text/html"}, WHOLE_HANDSHAKE], ids=["graphiql-accept", "whole-handshake"]
)
async def test_the_sdl_and_possible_types_need_credentials_whatever_the_headers(
    gateway: Gateway, path: str, headers: dict[str, str]
) -> None:
    # Only /graphql serves GraphiQL's page and websockets; elsewhere those headers excuse nothing.
    async with aiohttp.ClientSession() as http, http.get(f"{gateway.url}{path}", headers=headers) as resp:
        body = await resp.read()
        assert resp.status == 401, body[:200]
        assert json.loads(body)["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
