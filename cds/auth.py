"""CDS client authentication (CDS Hooks "Trusting CDS Clients"): a signed JWT on every call.

Trusted clients come from the JSON file named by CDS_TRUSTED_CLIENTS: a list of
`{"iss": ..., "jwks": {...}}` or `{"iss": ..., "jwks_url": ...}` (fetched JWKS are cached for
`JWKS_CACHE_SECONDS`, at most `_MAX_CACHED_KEYS` keys per issuer). Checks: the issuer is trusted;
`alg` is RS384 or ES384 (never `none` or HMAC); the signature verifies with the issuer's key named
by `kid`; `aud` is the URL of the service called (CDS_AUDIENCE + path, never the Host header);
`exp` is present, not past and at most 5 minutes ahead; `iat` is not in the future; `jti` has not
been seen before within its lifetime. Clock skew of `LEEWAY` seconds.
The `jti` cache is per process: with several workers a replay is caught by the worker that saw
the first use only.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jwt

from cds.errors import ConfigError, Unauthorized

ALGORITHMS = ("RS384", "ES384")
LEEWAY = 60
MAX_LIFETIME = 300  #: CDS Hooks: `exp` at most 5 minutes ahead
JWKS_CACHE_SECONDS = 300
_MAX_CACHED_KEYS = 16
_MAX_JTIS = 100_000


class ClientAuth:
    """Verifies the `Authorization` header of one call; thread-safe."""

    def __init__(self, trusted_clients_file: str) -> None:
        self._static: dict[str, jwt.PyJWKSet] = {}
        self._remote: dict[str, jwt.PyJWKClient] = {}
        for client in _read_trusted(trusted_clients_file):
            if "jwks" in client:
                self._static[client["iss"]] = jwt.PyJWKSet.from_dict(client["jwks"])
            else:
                self._remote[client["iss"]] = jwt.PyJWKClient(
                    client["jwks_url"], cache_keys=True, max_cached_keys=_MAX_CACHED_KEYS,
                    lifespan=JWKS_CACHE_SECONDS, timeout=5)
        self._seen: dict[str, float] = {}
        self._lock = threading.Lock()

    def verify(self, authorization: str | None, audience: str) -> dict[str, Any]:
        """The verified claims; Unauthorized naming the problem otherwise."""
        scheme, _, token = (authorization or "").partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise Unauthorized("a signed JWT is required: 'Authorization: Bearer <JWT>'",
                               field="Authorization")
        token = token.strip()
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the token is not a JWT: {exc}", field="Authorization") from exc
        alg, iss = header.get("alg"), unverified.get("iss")
        if alg not in ALGORITHMS:
            raise Unauthorized(f"algorithm {alg!r} is not accepted (use RS384 or ES384)",
                               field="Authorization")
        key = self._key(iss, header.get("kid"), token)
        try:
            claims = jwt.decode(
                token, key, algorithms=[alg], audience=audience, issuer=iss, leeway=LEEWAY,
                options={"require": ["exp", "iat", "iss", "aud", "jti"]},
            )
        except jwt.PyJWTError as exc:
            raise Unauthorized(f"the token was refused: {exc}", field="Authorization") from exc
        if float(claims["exp"]) > time.time() + MAX_LIFETIME + LEEWAY:
            raise Unauthorized(f"the token lives longer than {MAX_LIFETIME} s (exp too far ahead)",
                               field="Authorization")
        self._check_replay(str(claims["jti"]), float(claims["exp"]))
        return claims

    def _key(self, iss: Any, kid: Any, token: str) -> Any:
        if iss in self._static:
            keys = self._static[iss]
            match = next((k for k in keys.keys if k.key_id == kid), None)
            if match is None:
                raise Unauthorized(f"no key {kid!r} for issuer {iss!r}", field="Authorization")
            return match.key
        if iss in self._remote:
            try:
                return self._remote[iss].get_signing_key_from_jwt(token).key
            except jwt.PyJWTError as exc:
                raise Unauthorized(f"no usable key {kid!r} for issuer {iss!r}: {exc}",
                                   field="Authorization") from exc
        raise Unauthorized(f"issuer {iss!r} is not a trusted CDS client", field="Authorization")

    def _check_replay(self, jti: str, exp: float) -> None:
        now = time.time()
        with self._lock:
            if len(self._seen) >= _MAX_JTIS:
                self._seen = {j: e for j, e in self._seen.items() if e + LEEWAY > now}
            if jti in self._seen and self._seen[jti] + LEEWAY > now:
                raise Unauthorized("the token was already used (jti replayed)",
                                   field="Authorization")
            self._seen[jti] = exp


def _read_trusted(path: str) -> list[Mapping[str, Any]]:
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(path, f"CDS_TRUSTED_CLIENTS cannot be read: {exc}") from exc
    if not isinstance(data, list):
        raise ConfigError(path, "CDS_TRUSTED_CLIENTS must be a JSON list")
    for i, client in enumerate(data):
        ok = isinstance(client, dict) and isinstance(client.get("iss"), str) and (
            isinstance(client.get("jwks"), dict) or isinstance(client.get("jwks_url"), str))
        if not ok:
            raise ConfigError(path, f"entry {i} needs 'iss' and 'jwks' or 'jwks_url'")
    return data
