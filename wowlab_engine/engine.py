"""The engines registered with wowlab: ``numba`` (compiled) and ``reference`` (pure Python).

Both run the same kernel source (see :mod:`wowlab_engine.kernels`), so for the same config
and seed they return identical results; ``reference`` is about a hundred times slower and
exists to check the compiled build and to run where numba cannot; it is ``local_only``,
so the pool never runs it (``wowlab sim --engine reference`` does, on this machine).

Given a stop flag or a progress callback, a chunk runs in short sub-batches (see
:mod:`wowlab_engine.batches`) with the same result.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from wowlab_core.engines import ProgressCallback
from wowlab_core.errors import InvalidRequest
from wowlab_core.results import ChunkResult
from wowlab_engine import __version__, kernels
from wowlab_engine.batches import run_in_batches
from wowlab_engine.compare import (
    PreparedCompare,
    compare_section,
    is_compare_document,
    prepare_compare,
    run_compare_chunk,
)
from wowlab_engine.compiler import PreparedSim, prepare
from wowlab_engine.example_configs import example_paths
from wowlab_engine.report import report_sections
from wowlab_engine.runner import MAX_ITERATIONS_PER_CHUNK, run_chunk

_warm: set[str] = set()
_warm_lock = threading.Lock()


class NumbaEngine:
    """The compiled engine: ``njit(nogil=True, cache=True)``, runs in worker threads."""

    name = "numba"
    version = __version__

    def _loop(self) -> ModuleType:
        return kernels.compiled_loop()

    def prepare(self, config: Any) -> PreparedSim | PreparedCompare:
        """Validate a parsed JSON config (or compare document); raise ConfigInvalid naming
        the JSON path."""
        if is_compare_document(config):
            return prepare_compare(config)
        return prepare(config)

    def run_chunk(
        self,
        prepared: PreparedSim | PreparedCompare,
        *,
        seed: int,
        seed_offset: int,
        iterations: int,
        stop: threading.Event | None = None,
        progress: ProgressCallback | None = None,
    ) -> ChunkResult:
        """Run global iterations ``[seed_offset, seed_offset + iterations)`` of a job (of
        the base and every variant, for a compare document).

        With ``stop`` or ``progress``, in sub-batches of about 0.1 s: raises
        :class:`~wowlab_core.errors.ChunkStopped` soon after ``stop`` is set.
        """
        run = run_compare_chunk if isinstance(prepared, PreparedCompare) else run_chunk
        loop = self._loop()
        if stop is None and progress is None:
            return run(
                prepared,  # type: ignore[arg-type]
                loop,
                seed=seed,
                seed_offset=seed_offset,
                iterations=iterations,
            )
        if not 1 <= iterations <= MAX_ITERATIONS_PER_CHUNK:
            raise InvalidRequest(
                f"iterations must be between 1 and {MAX_ITERATIONS_PER_CHUNK}", field="iterations"
            )
        return run_in_batches(
            lambda offset, count: run(
                prepared,  # type: ignore[arg-type]
                loop,
                seed=seed,
                seed_offset=offset,
                iterations=count,
            ),
            seed_offset=seed_offset,
            iterations=iterations,
            stop=stop,
            progress=progress,
        )

    def warm_up(self) -> None:
        """Compile (or load from numba's cache) the kernel once per process, so that a timed
        run measures the config and not the compiler."""
        with _warm_lock:
            if self.name in _warm:
                return
            example = example_paths().get("fire_mage") or next(iter(example_paths().values()))
            self.run_chunk(
                self.prepare(json.loads(example.read_bytes())),
                seed=0,
                seed_offset=0,
                iterations=1,
            )
            _warm.add(self.name)

    def report_sections(
        self, prepared: PreparedSim | PreparedCompare, result: ChunkResult
    ) -> dict[str, Any]:
        """Abilities, auras, procs, resources and fight sections of a merged result (of the
        base, and the variants' figures, for a compare document)."""
        if isinstance(prepared, PreparedCompare):
            sections = report_sections(prepared.base, result)
            sections["compare"] = compare_section(prepared, result)
            return sections
        return report_sections(prepared, result)

    def describe(self, prepared: PreparedSim | PreparedCompare) -> dict[str, Any]:
        """The fight the job pages show: its length, variation and targets (of the base,
        for a compare document)."""
        fight = prepared.config.fight
        return {
            "fight_seconds": fight.max_time,
            "fight_variation": fight.vary_combat_length,
            "targets": fight.targets,
        }

    def examples(self) -> Mapping[str, Path]:
        """Example configs by name."""
        return example_paths()


class ReferenceEngine(NumbaEngine):
    """The same kernel run as plain Python: identical results, no compilation."""

    name = "reference"
    #: Pure Python is ~100x slower: for checking and local runs, never for volunteers' PCs.
    local_only = True

    def _loop(self) -> ModuleType:
        return kernels.pure_python_loop()
