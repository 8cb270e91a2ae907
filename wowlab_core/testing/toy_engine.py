"""A tiny deterministic engine for tests of the core and of transports.

Not a combat model: iteration ``k`` of a job with seed ``s`` gets a value from a
splitmix64 hash of ``(s, k)``. It keeps the engine contract (exact results, any chunking
gives the same merged result), runs in microseconds, and can be told to sleep or fail so
tests can kill nodes mid-chunk. It is never registered by default: tests register it
through the ``toy_engine`` fixture or :func:`toy_engine_plugin`.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from wowlab_core.errors import ConfigInvalid
from wowlab_core.hookspecs import hookimpl
from wowlab_core.results import ChunkResult

MASK64 = (1 << 64) - 1
_FIELDS = {"base_dps": (1, 10**9), "spread": (0, 10**9), "sleep_ms": (0, 60_000), "fail": (0, 1)}


def splitmix64(x: int) -> int:
    """One splitmix64 step: a well-mixed 64-bit hash of ``x``."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


class ToyEngine:
    """Config: ``{"base_dps": int, "spread": int, "sleep_ms": int, "fail": 0|1}``."""

    name = "toy"
    version = "1"

    def prepare(self, config: Any) -> dict[str, int]:
        """Check the config; errors name the field."""
        if not isinstance(config, dict):
            raise ConfigInvalid("config must be a JSON object")
        out = {"base_dps": 1000, "spread": 200, "sleep_ms": 0, "fail": 0}
        for key, value in config.items():
            if key not in _FIELDS:
                raise ConfigInvalid(f"{key}: unknown field", field=key)
            low, high = _FIELDS[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigInvalid(f"{key}: must be an integer in [{low}, {high}]", field=key)
            out[key] = value
        return out

    def run_chunk(
        self, prepared: dict[str, int], *, seed: int, seed_offset: int, iterations: int
    ) -> ChunkResult:
        """Values for iterations ``[seed_offset, seed_offset + iterations)``."""
        if prepared["fail"]:
            raise RuntimeError("toy engine told to fail")
        if prepared["sleep_ms"]:
            time.sleep(prepared["sleep_ms"] / 1000)
        values = []
        crits = 0
        for k in range(seed_offset, seed_offset + iterations):
            h = splitmix64((seed * 0x100000001B3) ^ k)
            spread = h % (2 * prepared["spread"] + 1) - prepared["spread"]
            values.append((prepared["base_dps"] + spread) * 1000 + (h >> 40) % 1000)
            crits += (h >> 20) & 1
        metrics = {
            "events": 10 * iterations,
            "ability.toy.crits": crits,
            "ability.toy.executes": iterations,
        }
        return ChunkResult.from_values(values, seed_offset=seed_offset, metrics=metrics)

    def report_sections(self, prepared: dict[str, int], result: ChunkResult) -> dict[str, Any]:
        """One tiny section, so reports carry engine output."""
        executes = result.metrics.get("ability.toy.executes", 0)
        crits = result.metrics.get("ability.toy.crits", 0)
        return {
            "abilities": [
                {
                    "name": "toy",
                    "executes": executes,
                    "crit_pct": round(100 * crits / executes, 2) if executes else 0.0,
                }
            ]
        }

    def examples(self) -> Mapping[str, Path]:
        """No examples."""
        return {}


class toy_engine_plugin:
    """A plugin object that registers :class:`ToyEngine`."""

    @staticmethod
    @hookimpl
    def wowlab_register_engines(register: Any) -> None:
        """Register the toy engine."""
        register(ToyEngine())


__all__ = ["ToyEngine", "splitmix64", "toy_engine_plugin"]
