"""Content hashing: canonical JSON, then sha256.

The seed design hashed ``JSON.stringify(config)``, which depends on key order (defect 4).
Canonical JSON here means sorted keys, no insignificant whitespace, UTF-8 without escaping,
and NaN/Infinity rejected, so equal configs always hash equally.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from wowlab_core.errors import ConfigInvalid


def canonical_json(value: Any) -> str:
    """Return ``value`` as canonical JSON text.

    Raises:
        ConfigInvalid: the value holds NaN or Infinity, or something JSON cannot express.
    """
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except ValueError as exc:
        raise ConfigInvalid(f"config is not valid JSON: {exc}") from exc
    except TypeError as exc:
        raise ConfigInvalid(f"config is not JSON-serialisable: {exc}") from exc
    # A lone surrogate (JSON allows "\ud800") has no UTF-8 form, so it could not be hashed.
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ConfigInvalid(f"config is not valid UTF-8 text: {exc.reason}") from exc
    return text


def content_hash(value: Any) -> str:
    """Return the sha256 hex digest of ``value``'s canonical JSON (UTF-8)."""
    return hashlib.sha256(canonical_json(value).encode("utf-8")).hexdigest()


def parse_json(text: str | bytes, *, what: str = "config") -> Any:
    """Parse JSON strictly (NaN and Infinity are rejected) with a one-line error."""

    def reject_constant(name: str) -> Any:
        raise ValueError(f"{name} is not allowed")

    try:
        return json.loads(text, parse_constant=reject_constant)
    except json.JSONDecodeError as exc:
        raise ConfigInvalid(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigInvalid(f"{what} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise ConfigInvalid(f"{what} is not valid JSON: it is nested too deeply") from None


__all__ = ["canonical_json", "content_hash", "parse_json"]
