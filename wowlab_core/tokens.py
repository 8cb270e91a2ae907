"""Secret tokens (node tokens, lease tokens, API tokens): stored as sha256, compared in
constant time."""

from __future__ import annotations

import hashlib
import hmac


def hash_token(token: str) -> str:
    """sha256 hex of a secret token (tokens are random, so no salt is needed)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def tokens_match(token: str, token_hash: str | None) -> bool:
    """Constant-time check of a token against a stored hash."""
    return token_hash is not None and hmac.compare_digest(hash_token(token), token_hash)


__all__ = ["hash_token", "tokens_match"]
