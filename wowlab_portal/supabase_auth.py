"""Supabase Auth sessions as portal logins (optional).

When the portal runs on a Supabase project's database (``wowlab supabase apply`` made the
tables) and ``WOWLAB_SUPABASE_JWT_SECRET`` holds the project's JWT secret, a request with
``Authorization: Bearer <a Supabase Auth access token>`` is the wowlab user that the
database's trigger made for that Supabase user (``wowlab.auth_users``). The token must be
HS256-signed with the secret, unexpired, for role and audience ``authenticated``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from typing import Any

import sqlalchemy as sa
from sqlmodel import Session

from wowlab_core.errors import AuthenticationFailed
from wowlab_core.models import User


def looks_like_jwt(token: str) -> bool:
    """Whether a bearer token has a JWT's three dot-separated parts."""
    return token.count(".") == 2 and not token.startswith("wl")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def verified_claims(token: str, secret: str, *, now: float | None = None) -> dict[str, Any]:
    """The claims of a valid Supabase Auth access token; AuthenticationFailed otherwise."""
    try:
        header_b64, payload_b64, mac_b64 = token.split(".")
        header = json.loads(_unb64(header_b64))
        claims = json.loads(_unb64(payload_b64))
        mac = _unb64(mac_b64)
    except (ValueError, UnicodeDecodeError):
        raise AuthenticationFailed("not a valid Supabase session token") from None
    expected = hmac.new(
        secret.encode(), f"{header_b64}.{payload_b64}".encode(), hashlib.sha256
    ).digest()
    if (
        not isinstance(header, dict)
        or header.get("alg") != "HS256"
        or not hmac.compare_digest(mac, expected)
    ):
        raise AuthenticationFailed("the Supabase session token is not signed by this project")
    if not isinstance(claims, dict):
        raise AuthenticationFailed("not a valid Supabase session token")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or exp < (now if now is not None else time.time()):
        raise AuthenticationFailed("the Supabase session has expired: sign in again")
    audience = claims.get("aud")
    audiences = audience if isinstance(audience, list) else [audience]
    if claims.get("role") != "authenticated" or "authenticated" not in audiences:
        raise AuthenticationFailed("the token is not a signed-in user's session")
    if not isinstance(claims.get("sub"), str):
        raise AuthenticationFailed("the Supabase session names no user")
    return claims


def user_for_supabase_token(session: Session, *, token: str, secret: str) -> User:
    """The wowlab user of a Supabase Auth session."""
    claims = verified_claims(token, secret)
    try:
        row = session.execute(
            sa.text("select user_id from wowlab.auth_users where auth_id::text = :sub"),
            {"sub": claims["sub"]},
        ).first()
    except sa.exc.DBAPIError:
        session.rollback()
        raise AuthenticationFailed(
            "this portal's database has no Supabase users (run `wowlab supabase apply`)"
        ) from None
    user = session.get(User, row[0]) if row is not None else None
    if user is None:
        raise AuthenticationFailed("no wowlab user for this Supabase user")
    return user


__all__ = ["looks_like_jwt", "user_for_supabase_token", "verified_claims"]
