"""Who is calling: bearer JWTs and static API keys, checked into a `Principal` with a role."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from dataclasses import dataclass
from typing import Any

import jwt
from jwt.algorithms import RSAAlgorithm
from pydantic import SecretStr

from gateway.errors import Unauthenticated
from gateway.jwks import JwksKeys
from gateway.settings import MIN_JWT_SECRET_BYTES, AuthSettings, ConfigurationError, Role

API_KEY_HEADER = "X-API-Key"
#: verified bearer tokens, and API keys, remembered (oldest forgotten first)
VERIFIED_TOKENS = 10_000


@dataclass(frozen=True, slots=True)
class Principal:
    """A checked caller. `name` scopes idempotency keys and the journal; `role` says what they may do."""

    name: str
    role: Role
    #: when the credentials stop being accepted (a token's `exp` plus the leeway), as Unix time; None: never
    valid_until: float | None = None

    def may(self, role: Role) -> bool:
        return self.role.rank >= role.rank

    def expired(self, now: float | None = None) -> bool:
        return self.valid_until is not None and (time.time() if now is None else now) >= self.valid_until


#: who calls when authentication is switched off
ANONYMOUS_ADMIN = Principal(name="anonymous", role=Role.ADMIN)


def check_jwt_secret(secret: SecretStr | None) -> None:
    """An HS256 secret shorter than the hash it keys can be guessed offline from any token it signed."""
    if secret is not None and len(secret.get_secret_value().encode()) < MIN_JWT_SECRET_BYTES:
        raise ConfigurationError(
            f"LIVE_GATEWAY_AUTH__JWT_SECRET must be at least {MIN_JWT_SECRET_BYTES} bytes long "
            f"(it is {len(secret.get_secret_value().encode())}); make one with `openssl rand -base64 48`"
        )


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return "lg_" + secrets.token_urlsafe(32)


class Authenticator:
    """Checks the credentials of a request against the settings' JWT keys and API keys."""

    def __init__(self, settings: AuthSettings) -> None:
        self.jwks = JwksKeys(
            settings.jwks_url,
            settings.jwks_refresh_interval,
            settings.jwks_min_refetch,
            on_change=self._forget_verified,
        )
        self._verified: dict[str, tuple[Principal, float]] = {}
        self._verified_keys: dict[str, Principal] = {}
        self.configure(settings)

    def configure(self, settings: AuthSettings) -> None:
        """Takes these settings from now on (at start, and when they are reloaded); tokens verified under
        the old ones are checked again."""
        api_keys = {key.sha256: key for key in settings.api_keys}
        rs256_keys: dict[str | None, Any] = {}
        if settings.jwt_public_key:
            rs256_keys[None] = RSAAlgorithm(RSAAlgorithm.SHA256).prepare_key(settings.jwt_public_key)
        if settings.jwks_file:
            jwks = jwt.PyJWKSet.from_json(settings.jwks_file.read_text())
            for key in jwks.keys:
                rs256_keys[key.key_id] = key.key
        # Everything above is read before anything changes: a bad new setting leaves the old ones in force.
        self.settings = settings
        self._api_keys = api_keys
        self._hs256 = settings.jwt_secret.get_secret_value() if settings.jwt_secret else None
        self._rs256_keys = rs256_keys
        self.jwks.refresh_interval = settings.jwks_refresh_interval
        self.jwks.min_refetch = settings.jwks_min_refetch
        self.jwks.forget(settings.jwks_url)
        self._forget_verified()

    def _forget_verified(self) -> None:
        self._verified.clear()
        self._verified_keys.clear()

    @property
    def enabled(self) -> bool:
        return self.settings.enabled

    def check_configured(self) -> None:
        """Refuses settings that would let nobody in, or let anyone guess a key that signs tokens."""
        if self.enabled and not self.settings.has_credentials:
            raise ConfigurationError(
                "authentication is on but no credentials are configured: set LIVE_GATEWAY_AUTH__JWT_SECRET, "
                "__JWT_PUBLIC_KEY, __JWKS_FILE, __JWKS_URL or __API_KEYS (or LIVE_GATEWAY_AUTH__ENABLED=false)"
            )
        check_jwt_secret(self.settings.jwt_secret)

    def authenticate(self, authorization: str | None, api_key: str | None) -> Principal:
        """The caller the credentials prove, or `Unauthenticated`. No credentials at all is also an error."""
        if not self.enabled:
            return ANONYMOUS_ADMIN
        if api_key:
            return self._from_api_key(api_key)
        if authorization:
            scheme, _, token = authorization.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                raise Unauthenticated("the Authorization header must be `Bearer <token>`")
            return self._from_jwt(token.strip())
        raise Unauthenticated(f"credentials required: a bearer token, or an API key in {API_KEY_HEADER}")

    async def authenticate_async(self, authorization: str | None, api_key: str | None) -> Principal:
        """`authenticate`, but a token signed by a key the JWKS URL did not have when last read has the key
        set read again (at most once per `jwks_min_refetch` seconds) before it is refused."""
        try:
            return self.authenticate(authorization, api_key)
        except UnknownSigningKey as exc:
            if not await self.jwks.refresh_for(exc.kid):
                raise
        return self.authenticate(authorization, api_key)

    def _from_api_key(self, key: str) -> Principal:
        # A client sends its key with every request: a key found once is remembered (until the settings
        # change), as a verified token is. An unknown key is looked for every time.
        known = self._verified_keys.get(key)
        if known is not None:
            return known
        digest = hash_api_key(key)
        for stored, entry in self._api_keys.items():
            if hmac.compare_digest(stored, digest):
                principal = Principal(name=f"key:{entry.name}", role=entry.role)
                if len(self._verified_keys) >= VERIFIED_TOKENS:
                    self._verified_keys.pop(next(iter(self._verified_keys)))
                self._verified_keys[key] = principal
                return principal
        raise Unauthenticated("unknown API key")

    def _from_jwt(self, token: str) -> Principal:
        # Checking a signature costs more than the rest of a warm read, and a client sends the same token
        # for as long as it lives: a verified token is remembered until it expires.
        known = self._verified.get(token)
        if known is not None:
            principal, expires = known
            if time.time() < expires + self.settings.leeway:
                return principal
            del self._verified[token]
        principal, expires = self._verify(token)
        if len(self._verified) >= VERIFIED_TOKENS:
            self._verified.pop(next(iter(self._verified)))
        self._verified[token] = (principal, expires)
        return principal

    def _rs256_key(self, kid: str | None) -> Any:
        key = self._rs256_keys.get(kid) or self.jwks.keys.get(kid)
        if key is None and kid is None:
            key = self._rs256_keys.get(None)
        # One key configured outright (a PEM, a one-key file) signs tokens that name no key, or another name.
        if key is None and not self.jwks.url and len(self._rs256_keys) == 1:
            key = next(iter(self._rs256_keys.values()))
        return key

    def _verify(self, token: str) -> tuple[Principal, float]:
        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("the bearer token is not a JWT") from exc
        algorithm = header.get("alg")
        key: Any
        if algorithm == "HS256" and self._hs256:
            key = self._hs256
        elif algorithm == "RS256" and (self._rs256_keys or self.jwks.url):
            kid = header.get("kid")
            key = self._rs256_key(kid if isinstance(kid, str) else None)
            if key is None:
                raise UnknownSigningKey(kid if isinstance(kid, str) else None)
        else:
            raise Unauthenticated(f"bearer tokens signed with {algorithm!r} are not accepted")
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self.settings.audience,
                issuer=self.settings.issuer,
                leeway=self.settings.leeway,
                options={"require": ["exp", "sub"], "verify_aud": self.settings.audience is not None},
            )
        except jwt.ExpiredSignatureError as exc:
            raise Unauthenticated("the bearer token has expired") from exc
        except jwt.ImmatureSignatureError as exc:
            raise Unauthenticated("the bearer token is not valid yet") from exc
        except jwt.InvalidAudienceError as exc:
            raise Unauthenticated("the bearer token is for another audience") from exc
        except jwt.InvalidIssuerError as exc:
            raise Unauthenticated("the bearer token is from another issuer") from exc
        except jwt.InvalidSignatureError as exc:
            raise Unauthenticated("the bearer token's signature does not verify") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Unauthenticated(f"the bearer token has no {exc.claim!r} claim") from exc
        except jwt.InvalidTokenError as exc:
            raise Unauthenticated("the bearer token is not valid") from exc
        role = _role_from(claims.get(self.settings.role_claim))
        if role is None:
            raise Unauthenticated(f"the bearer token's {self.settings.role_claim!r} claim names no known role")
        expires = float(claims["exp"])
        return Principal(name=f"sub:{claims['sub']}", role=role, valid_until=expires + self.settings.leeway), expires


class UnknownSigningKey(Unauthenticated):
    """A token signed by a key the gateway does not hold (yet: a JWKS URL may have it by now)."""

    def __init__(self, kid: str | None) -> None:
        super().__init__("the bearer token is signed by an unknown key")
        self.kid = kid


def _role_from(value: Any) -> Role | None:
    names = [value] if isinstance(value, str) else value if isinstance(value, list) else []
    roles = [Role(name) for name in names if isinstance(name, str) and name in Role._value2member_map_]
    return max(roles, key=lambda role: role.rank, default=None)


def issue_token(
    secret: str, *, subject: str, role: Role, ttl: float, audience: str | None = None, issuer: str | None = None
) -> str:
    """An HS256 token, for the demo and for operators who hold the secret (`live-gateway token`)."""
    now = int(time.time())
    claims: dict[str, Any] = {"sub": subject, "role": role.value, "iat": now, "nbf": now, "exp": now + int(ttl)}
    if audience:
        claims["aud"] = audience
    if issuer:
        claims["iss"] = issuer
    return jwt.encode(claims, secret, algorithm="HS256")
