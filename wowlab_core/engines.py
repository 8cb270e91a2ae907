"""The engine contract: what the core needs from a combat engine.

An engine turns a validated config into exact :class:`~wowlab_core.results.ChunkResult`
values. The determinism contract (DESIGN.md): global iteration ``k`` of a job always runs
with randomness derived from ``(seed, k)``, whatever the chunking and whichever node runs
it, and damage is integer; so merging chunk results gives the same report every time.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from wowlab_core.results import ChunkResult

#: Called by an engine with the number of iterations of the chunk done so far.
ProgressCallback = Callable[[int], None]


@runtime_checkable
class Engine(Protocol):
    """A combat engine, registered by name through ``wowlab_register_engines``.

    ``run_chunk`` is called from worker threads, several at once: it must not touch shared
    mutable state, and should release the GIL while it computes.

    Optional, found by attribute: ``local_only = True`` marks an engine that may run only on
    the submitter's own machine (``wowlab sim``), never for the pool (the pure-Python
    reference engine); ``warm_up()`` does one-off work (compiling) before a timed run;
    ``describe(prepared)`` returns what the job pages show of the fight, a mapping with any
    of ``fight_seconds`` (float), ``fight_variation`` (each iteration lasts
    ``fight_seconds`` x [1 - v, 1 + v]) and ``targets`` (int).
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
        self,
        prepared: Any,
        *,
        seed: int,
        seed_offset: int,
        iterations: int,
        stop: threading.Event | None = None,
        progress: ProgressCallback | None = None,
    ) -> ChunkResult:
        """Run global iterations ``[seed_offset, seed_offset + iterations)`` of a job.

        The result's metrics should include ``events`` (events processed): reports show
        events per second, and the pool sizes chunks by events per iteration.

        ``stop`` and ``progress`` are optional (an engine without them still works, but a
        node cannot interrupt it): the engine checks ``stop`` between iterations, at least
        every 0.2 s, and once it is set raises
        :class:`~wowlab_core.errors.ChunkStopped`; it calls ``progress(done)`` (from its own
        thread) with the iterations done so far as it goes. The result must be the same
        with and without them.
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


def supports_interrupt(engine: Any) -> bool:
    """Whether ``engine.run_chunk`` takes ``stop`` and ``progress`` (engines written before
    they existed do not)."""
    try:
        params = inspect.signature(engine.run_chunk).parameters
    except (TypeError, ValueError, AttributeError):
        return False
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return True
    return "stop" in params and "progress" in params


def is_local_only(engine: Any) -> bool:
    """Whether ``engine`` may run only on the submitter's own machine, not for the pool."""
    return bool(getattr(engine, "local_only", False))


def run_engine_chunk(
    engine: Engine,
    prepared: Any,
    *,
    seed: int,
    seed_offset: int,
    iterations: int,
    stop: threading.Event | None = None,
    progress: ProgressCallback | None = None,
) -> ChunkResult:
    """``engine.run_chunk``, passing ``stop`` and ``progress`` only to an engine that takes
    them (another one runs its chunk to the end)."""
    if (stop is not None or progress is not None) and supports_interrupt(engine):
        return engine.run_chunk(
            prepared,
            seed=seed,
            seed_offset=seed_offset,
            iterations=iterations,
            stop=stop,
            progress=progress,
        )
    return engine.run_chunk(prepared, seed=seed, seed_offset=seed_offset, iterations=iterations)


__all__ = [
    "Engine",
    "ProgressCallback",
    "is_local_only",
    "run_engine_chunk",
    "supports_interrupt",
]
