"""What one iteration of a config costs: measured once, at submit, before chunks are sized.

A config that passes validation can cost a thousand times another per iteration, so a
chunk size that suits one would keep a volunteer's PC busy for hours on the other. The
submitting machine therefore runs the config briefly (``CALIBRATION_SECONDS``, bounded:
an interruptible engine is stopped between iterations) and records two figures: wall
seconds per iteration here, and the engine's events per iteration (the ``events``
metric), which does not depend on the machine. :mod:`wowlab_core.planning` sizes chunks
and budgets from them; :func:`check_cost` refuses a config whose single iteration is too
long for a node to stop it within a second.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any

from wowlab_core.engines import Engine, supports_interrupt
from wowlab_core.errors import ChunkStopped, ConfigTooExpensive
from wowlab_core.results import ChunkResult

#: How long the calibration run aims to take.
CALIBRATION_SECONDS = 0.1
#: At most this many iterations are run to calibrate.
CALIBRATION_ITERATIONS = 1000
#: The pool refuses configs whose one iteration takes longer than this where measured: a
#: node checks its stop flag between iterations, and cancelling must take effect within 1 s.
DEFAULT_MAX_SECONDS_PER_ITERATION = 0.5
#: Seed of calibration runs (any fixed seed: the cost hardly depends on it).
CALIBRATION_SEED = 1


@dataclass(frozen=True, slots=True)
class IterationCost:
    """The measured cost of one iteration of a config on one engine.

    Attributes:
        seconds: wall seconds per iteration on the machine that measured it.
        events: engine events per iteration (machine-independent); None when the engine
            does not report an ``events`` metric.
        iterations: how many iterations the measurement ran.
    """

    seconds: float
    events: float | None
    iterations: int


def _events_per_iteration(result: ChunkResult | None) -> float | None:
    if result is None or result.count <= 0:
        return None
    events = result.metrics.get("events")
    return events / result.count if isinstance(events, int) and events > 0 else None


def _measure_interruptible(
    engine: Engine, prepared: Any, *, seconds: float, limit: float, iterations: int
) -> IterationCost:
    stop = threading.Event()
    marks: list[tuple[float, int]] = []
    started = time.perf_counter()

    def progress(done: int) -> None:
        elapsed = time.perf_counter() - started
        marks.append((elapsed, done))
        if elapsed >= seconds or done >= iterations:
            stop.set()

    # A first iteration slower than the limit is stopped (at the next iteration boundary).
    timer = threading.Timer(max(seconds, limit), stop.set)
    timer.daemon = True
    timer.start()
    partial: ChunkResult | None
    try:
        partial = engine.run_chunk(
            prepared,
            seed=CALIBRATION_SEED,
            seed_offset=0,
            iterations=iterations,
            stop=stop,
            progress=progress,
        )
    except ChunkStopped as exc:
        partial = exc.partial if isinstance(exc.partial, ChunkResult) else None
    finally:
        timer.cancel()
    total = time.perf_counter() - started
    if not marks:
        if partial is None:
            raise _too_expensive_unfinished(total, limit)
        marks.append((total, partial.count))
    (t_first, d_first), (t_last, d_last) = marks[0], marks[-1]
    if d_last <= 0:
        raise _too_expensive_unfinished(total, limit)
    # The slope past the first mark leaves out start-up costs of the run.
    if d_last > d_first and t_last > t_first:
        per_iteration = (t_last - t_first) / (d_last - d_first)
    else:
        per_iteration = t_last / d_last
    return IterationCost(
        seconds=per_iteration, events=_events_per_iteration(partial), iterations=d_last
    )


def _measure_by_doubling(
    engine: Engine, prepared: Any, *, seconds: float, iterations: int
) -> IterationCost:
    # An engine without a stop flag: runs of 1, 4, 16 ... iterations until the time is
    # spent. Only its first iteration is unbounded.
    spent = 0.0
    count = 1
    while True:
        started = time.perf_counter()
        result = engine.run_chunk(prepared, seed=CALIBRATION_SEED, seed_offset=0, iterations=count)
        elapsed = time.perf_counter() - started
        spent += elapsed
        per_iteration = elapsed / count
        if spent >= seconds or count >= iterations or per_iteration * count * 4 > seconds:
            return IterationCost(
                seconds=per_iteration, events=_events_per_iteration(result), iterations=count
            )
        count = min(count * 4, iterations)


def _too_expensive_unfinished(elapsed: float, limit: float) -> ConfigTooExpensive:
    return ConfigTooExpensive(
        f"this config is too expensive for the pool: one iteration takes more than "
        f"{elapsed:.1f} s (the first was stopped unfinished), the limit is {limit:g} s per "
        "iteration (so that a volunteer's node can stop a chunk within a second); make it "
        "cheaper (e.g. a shorter fight, fewer targets or procs)",
        field="config",
    )


def measure_cost(
    engine: Engine,
    prepared: Any,
    *,
    limit_seconds: float = DEFAULT_MAX_SECONDS_PER_ITERATION,
    seconds: float = CALIBRATION_SECONDS,
    iterations: int = CALIBRATION_ITERATIONS,
) -> IterationCost:
    """Run ``prepared`` briefly on ``engine`` and return its cost per iteration.

    Takes about ``seconds`` (an interruptible engine is stopped once its first iteration
    has run past ``max(seconds, limit_seconds)``), plus the engine's ``warm_up()`` once per
    process if it has one.

    Raises:
        ConfigTooExpensive: an interruptible engine finished no iteration in that time.
    """
    warm_up = getattr(engine, "warm_up", None)
    if callable(warm_up):
        warm_up()
    if supports_interrupt(engine):
        return _measure_interruptible(
            engine, prepared, seconds=seconds, limit=limit_seconds, iterations=iterations
        )
    return _measure_by_doubling(engine, prepared, seconds=seconds, iterations=iterations)


def check_cost(cost: IterationCost, *, limit_seconds: float) -> None:
    """Refuse a config whose one iteration takes longer than ``limit_seconds``.

    Raises:
        ConfigTooExpensive: naming the measured cost and the limit.
    """
    if cost.seconds <= limit_seconds:
        return
    events = f" ({cost.events:,.0f} engine events)" if cost.events else ""
    raise ConfigTooExpensive(
        f"this config is too expensive for the pool: one iteration takes about "
        f"{cost.seconds:.2f} s{events}, the limit is {limit_seconds:g} s per iteration "
        "(so that a volunteer's node can stop a chunk within a second); make it cheaper "
        "(e.g. a shorter fight, fewer targets or procs)",
        field="config",
    )


__all__ = [
    "CALIBRATION_ITERATIONS",
    "CALIBRATION_SECONDS",
    "DEFAULT_MAX_SECONDS_PER_ITERATION",
    "IterationCost",
    "check_cost",
    "measure_cost",
]
