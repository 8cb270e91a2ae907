"""Content hashing: canonical JSON, then sha256.

The seed design hashed ``JSON.stringify(config)``, which depends on key order (defect 4).
Canonical JSON here means sorted keys, no insignificant whitespace, UTF-8 without escaping,
and NaN/Infinity rejected, so equal configs always hash equally.
"""

from __future__ import annotations

import hashlib
import json
import math
from typing import Any

from wowlab_core.errors import ConfigInvalid


class _Constant:
    """A ``NaN``/``Infinity`` literal met while parsing, kept so its path can be named."""

    def __init__(self, name: str) -> None:
        self.name = name


def json_path(parts: list[int | str]) -> str:
    """``['spells', 0, 'damage']`` as ``spells[0].damage`` (``config`` for the root)."""
    out = ""
    for part in parts:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or "config"


def _find_non_finite(value: Any, path: list[int | str]) -> tuple[str, str] | None:
    """The path and name of the first NaN/Infinity in ``value`` (depth first), or None."""
    stack: list[tuple[Any, list[int | str]]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, _Constant):
            return json_path(where), item.name
        if isinstance(item, float) and not math.isfinite(item):
            return json_path(where), "NaN" if math.isnan(item) else "Infinity"
        if isinstance(item, dict):
            stack.extend((v, [*where, str(k)]) for k, v in reversed(list(item.items())))
        elif isinstance(item, (list, tuple)):
            stack.extend((v, [*where, i]) for i, v in reversed(list(enumerate(item))))
    return None


def canonical_json(value: Any) -> str:
    """Return ``value`` as canonical JSON text.

    Raises:
        ConfigInvalid: the value holds NaN or Infinity (the error names its path), or
            something JSON cannot express.
    """
    try:
        text = json.dumps(
            value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
        )
    except ValueError as exc:
        found = _find_non_finite(value, [])
        if found is not None:
            path, name = found
            raise ConfigInvalid(
                f"config is not valid JSON: {name} is not allowed at {path}", field=path
            ) from None
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
    """Parse JSON strictly (NaN and Infinity are rejected, naming their path) with a one-line
    error."""
    try:
        value = json.loads(text, parse_constant=_Constant)
    except json.JSONDecodeError as exc:
        raise ConfigInvalid(
            f"{what} is not valid JSON: {exc.msg} at line {exc.lineno} column {exc.colno}"
        ) from exc
    except (ValueError, UnicodeDecodeError) as exc:
        raise ConfigInvalid(f"{what} is not valid JSON: {exc}") from exc
    except RecursionError:
        raise ConfigInvalid(f"{what} is not valid JSON: it is nested too deeply") from None
    found = _find_non_finite(value, [])
    if found is not None:
        path, name = found
        raise ConfigInvalid(
            f"{what} is not valid JSON: {name} is not allowed at {path}", field=path
        )
    return value


__all__ = ["canonical_json", "content_hash", "json_path", "parse_json"]
