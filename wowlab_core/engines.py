"""The engine contract: what the core needs from a combat engine.

An engine turns a validated config into exact :class:`~wowlab_core.results.ChunkResult`
values. The determinism contract (DESIGN.md): global iteration ``k`` of a job always runs
with randomness derived from ``(seed, k)``, whatever the chunking and whichever node runs
it, and damage is integer; so merging chunk results gives the same report every time.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from wowlab_core.results import ChunkResult


@runtime_checkable
class Engine(Protocol):
    """A combat engine, registered by name through ``wowlab_register_engines``.

    ``run_chunk`` is called from worker threads, several at once: it must not touch shared
    mutable state, and should release the GIL while it computes.
    """

    #: Registry name (``numba``, ``reference`` ...).
    name: str
    #: Engine version; it goes into reports, since results may change between versions.
    version: str

    def prepare(self, config: Any) -> Any:
        """Validate a parsed JSON config and return the engine's prepared form.

        Raises:
            wowlab_core.errors.ConfigInvalid: with a message naming the JSON path.
        """
        ...

    def run_chunk(
        self, prepared: Any, *, seed: int, seed_offset: int, iterations: int
    ) -> ChunkResult:
        """Run global iterations ``[seed_offset, seed_offset + iterations)`` of a job.

        The result's metrics should include ``events`` (events processed) so that reports
        can show events per second.
        """
        ...

    def report_sections(self, prepared: Any, result: ChunkResult) -> dict[str, Any]:
        """Engine-specific report sections (abilities, auras, procs ...) of a merged result.

        Must be a pure function of its arguments: reports are compared byte for byte.
        """
        ...

    def examples(self) -> Mapping[str, Path]:
        """Example configs shipped with the engine, by name."""
        ...


__all__ = ["Engine"]
