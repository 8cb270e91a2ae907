"""HS256 JWTs as Supabase issues them (anon, service_role, a signed-in user's session)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

#: The secret of the test gateway (a real project's is in its API settings).
TEST_JWT_SECRET = "wowlab-test-secret-with-at-least-32-characters"


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims: dict[str, Any], secret: str = TEST_JWT_SECRET) -> str:
    """An HS256 JWT of ``claims``."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{_b64(mac)}"


class InvalidJWT(Exception):
    """The token is malformed, badly signed or expired."""


def verify(
    token: str, secret: str = TEST_JWT_SECRET, *, now: float | None = None
) -> dict[str, Any]:
    """The claims of a valid HS256 JWT; raises :class:`InvalidJWT` otherwise."""
    try:
        header_b64, payload_b64, mac_b64 = token.split(".")
        header = json.loads(_unb64(header_b64))
        claims = json.loads(_unb64(payload_b64))
        mac = _unb64(mac_b64)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidJWT(f"malformed JWT: {exc}") from None
    if header.get("alg") != "HS256":
        raise InvalidJWT("wrong or missing JWT algorithm")
    expected = hmac.new(
        secret.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256
    ).digest()
    if not hmac.compare_digest(mac, expected):
        raise InvalidJWT("JWSInvalidSignature")
    if not isinstance(claims, dict):
        raise InvalidJWT("JWT claims must be an object")
    exp = claims.get("exp")
    if isinstance(exp, int | float) and exp < (now if now is not None else time.time()):
        raise InvalidJWT("JWT expired")
    return claims


def anon_key(secret: str = TEST_JWT_SECRET) -> str:
    """A project's anon key."""
    return sign({"iss": "supabase", "role": "anon", "iat": 1700000000, "exp": 4102444800}, secret)


def service_role_key(secret: str = TEST_JWT_SECRET) -> str:
    """A project's service_role key."""
    return sign(
        {"iss": "supabase", "role": "service_role", "iat": 1700000000, "exp": 4102444800}, secret
    )


def user_session(auth_id: str, secret: str = TEST_JWT_SECRET, *, lifetime: int = 3600) -> str:
    """The access token of a user signed in with Supabase Auth."""
    now = int(time.time())
    return sign(
        {
            "sub": auth_id,
            "role": "authenticated",
            "aud": "authenticated",
            "iat": now,
            "exp": now + lifetime,
        },
        secret,
    )


__all__ = [
    "TEST_JWT_SECRET",
    "InvalidJWT",
    "anon_key",
    "service_role_key",
    "sign",
    "user_session",
    "verify",
]
