"""A tiny deterministic engine for tests of the core and of transports.

Not a combat model: iteration ``k`` of a job with seed ``s`` gets a value from a
splitmix64 hash of ``(s, k)``. It keeps the engine contract (exact results, any chunking
gives the same merged result), runs in microseconds, and can be told to be slow or fail so
tests can kill nodes mid-chunk: ``iteration_ms`` makes every iteration take that long,
``sleep_ms`` stalls each chunk once its iterations are done. Both honour the stop flag
(checked at least every 20 ms). ``alloc_mb`` holds that much memory while a chunk runs.
It is never registered by default: tests register it through the ``toy_engine`` fixture
or :func:`toy_engine_plugin`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from wowlab_core.errors import ChunkStopped, ConfigInvalid
from wowlab_core.hookspecs import hookimpl
from wowlab_core.results import ChunkResult

MASK64 = (1 << 64) - 1
_FIELDS = {
    "base_dps": (1, 10**9),
    "spread": (0, 10**9),
    "sleep_ms": (0, 60_000),
    "iteration_ms": (0, 60_000),
    "alloc_mb": (0, 4096),
    "fail": (0, 1),
}
#: The stop flag is checked at least this often while the toy sleeps.
STOP_CHECK_SECONDS = 0.02


def _sleep(seconds: float, stop: threading.Event | None) -> bool:
    """Sleep ``seconds``, or less if ``stop`` is set; True if stopped."""
    if stop is None:
        time.sleep(seconds)
        return False
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        if stop.wait(min(left, STOP_CHECK_SECONDS)):
            return True
    return stop.is_set()


def splitmix64(x: int) -> int:
    """One splitmix64 step: a well-mixed 64-bit hash of ``x``."""
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & MASK64
    return x ^ (x >> 31)


def _metrics(iterations: int, crits: int) -> dict[str, int]:
    return {
        "events": 10 * iterations,
        "ability.toy.crits": crits,
        "ability.toy.executes": iterations,
    }


class ToyEngine:
    """Config: ``{"base_dps": int, "spread": int, "sleep_ms": int, "iteration_ms": int,
    "alloc_mb": int, "fail": 0|1}``."""

    name = "toy"
    version = "1"

    def prepare(self, config: Any) -> dict[str, int]:
        """Check the config; errors name the field."""
        if not isinstance(config, dict):
            raise ConfigInvalid("config must be a JSON object")
        out = dict.fromkeys(_FIELDS, 0) | {"base_dps": 1000, "spread": 200}
        for key, value in config.items():
            if key not in _FIELDS:
                raise ConfigInvalid(f"{key}: unknown field", field=key)
            low, high = _FIELDS[key]
            if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
                raise ConfigInvalid(f"{key}: must be an integer in [{low}, {high}]", field=key)
            out[key] = value
        return out

    def run_chunk(
        self,
        prepared: dict[str, int],
        *,
        seed: int,
        seed_offset: int,
        iterations: int,
        stop: threading.Event | None = None,
        progress: Callable[[int], None] | None = None,
    ) -> ChunkResult:
        """Values for iterations ``[seed_offset, seed_offset + iterations)``."""
        if prepared["fail"]:
            raise RuntimeError("toy engine told to fail")
        held = b"\x01" * (prepared["alloc_mb"] << 20)  # written, so it is resident
        values: list[int] = []
        crits = 0
        for k in range(seed_offset, seed_offset + iterations):
            done = k - seed_offset
            if prepared["iteration_ms"] and _sleep(prepared["iteration_ms"] / 1000, stop):
                partial = (
                    ChunkResult.from_values(
                        values, seed_offset=seed_offset, metrics=_metrics(done, crits)
                    )
                    if values
                    else None
                )
                raise ChunkStopped(
                    f"stopped after {done} of {iterations} iterations",
                    iterations_done=done,
                    partial=partial,
                )
            h = splitmix64((seed * 0x100000001B3) ^ k)
            spread = h % (2 * prepared["spread"] + 1) - prepared["spread"]
            values.append((prepared["base_dps"] + spread) * 1000 + (h >> 40) % 1000)
            crits += (h >> 20) & 1
            if progress is not None and (prepared["iteration_ms"] or done + 1 == iterations):
                progress(done + 1)
        metrics = _metrics(iterations, crits)
        result = ChunkResult.from_values(values, seed_offset=seed_offset, metrics=metrics)
        del held
        if prepared["sleep_ms"] and _sleep(prepared["sleep_ms"] / 1000, stop):
            raise ChunkStopped(
                f"stopped after {iterations} iterations, in the chunk's stall",
                iterations_done=iterations,
                partial=result,
            )
        return result

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
