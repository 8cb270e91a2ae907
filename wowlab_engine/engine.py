"""The engines registered with wowlab: ``numba`` (compiled) and ``reference`` (pure Python).

Both run the same kernel source (see :mod:`wowlab_engine.kernels`), so for the same config
and seed they return identical results; ``reference`` is about a hundred times slower and
exists to check the compiled build and to run where numba cannot.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from wowlab_core.results import ChunkResult
from wowlab_engine import __version__, kernels
from wowlab_engine.compiler import PreparedSim, prepare
from wowlab_engine.example_configs import example_paths
from wowlab_engine.report import report_sections
from wowlab_engine.runner import run_chunk


class NumbaEngine:
    """The compiled engine: ``njit(nogil=True, cache=True)``, runs in worker threads."""

    name = "numba"
    version = __version__

    def _loop(self) -> ModuleType:
        return kernels.compiled_loop()

    def prepare(self, config: Any) -> PreparedSim:
        """Validate a parsed JSON config; raise ConfigInvalid naming the JSON path."""
        return prepare(config)

    def run_chunk(
        self, prepared: PreparedSim, *, seed: int, seed_offset: int, iterations: int
    ) -> ChunkResult:
        """Run global iterations ``[seed_offset, seed_offset + iterations)`` of a job."""
        return run_chunk(
            prepared, self._loop(), seed=seed, seed_offset=seed_offset, iterations=iterations
        )

    def report_sections(self, prepared: PreparedSim, result: ChunkResult) -> dict[str, Any]:
        """Abilities, auras, procs, resources and fight sections of a merged result."""
        return report_sections(prepared, result)

    def examples(self) -> Mapping[str, Path]:
        """Example configs by name."""
        return example_paths()


class ReferenceEngine(NumbaEngine):
    """The same kernel run as plain Python: identical results, no compilation."""

    name = "reference"

    def _loop(self) -> ModuleType:
        return kernels.pure_python_loop()
