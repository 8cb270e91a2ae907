"""Run a chunk of iterations on a kernel build and return the exact :class:`ChunkResult`."""

from __future__ import annotations

from dataclasses import dataclass
from types import ModuleType

import numpy as np

from wowlab_core.errors import InvalidRequest
from wowlab_core.results import VALUE_SCALE, ChunkResult
from wowlab_engine.compiler import PreparedSim
from wowlab_engine.sim import model as M

#: Iterations per kernel call: metric sums of one block cannot overflow int64, and the
#: Python side adds blocks as unbounded ints.
BLOCK = 256
#: Most iterations one chunk may ask for (a chunk is a unit of work, not a whole job).
MAX_ITERATIONS_PER_CHUNK = 1_000_000
_MASK64 = (1 << 64) - 1

#: Summed per-ability columns, by metric column (the rest are min/max or per target).
AB_COLUMNS = (
    "damage",
    "direct_damage",
    "executes",
    "hits",
    "crits",
    "ticks",
    "tick_damage",
    "tick_crits",
    "crit_damage",
    "tick_crit_damage",
)
#: Per-ability extremes: metric column -> name (merged with min / max, see ChunkResult).
AB_EXTREMES = {
    M.AB_HIT_MIN: "hit.min",
    M.AB_HIT_MAX: "hit.max",
    M.AB_TICK_MIN: "tick.min",
    M.AB_TICK_MAX: "tick.max",
}
AU_COLUMNS = ("uptime_ms", "triggers", "refreshes")
RS_COLUMNS = ("overflow", "gained", "spent")
MISC = ("events", "fight_ms", "iterations_truncated", "hits_clipped", "damage_events", "casts")


@dataclass
class ChunkTotals:
    """Exact totals of a chunk's blocks: metric table, extremes and the long region."""

    sums: np.ndarray  # [columns, rows] of Python ints
    mins: np.ndarray  # [columns, rows] int64
    maxs: np.ndarray
    long: np.ndarray  # [long rows, long columns] of Python ints


def check_range(first: int, iterations: int) -> None:
    """Raise InvalidRequest unless iterations and the first iteration are in range."""
    if not 1 <= iterations <= MAX_ITERATIONS_PER_CHUNK:
        raise InvalidRequest(
            f"iterations must be between 1 and {MAX_ITERATIONS_PER_CHUNK}", field="iterations"
        )
    if not 0 <= first < 2**62:
        raise InvalidRequest("seed_offset must be between 0 and 2**62", field="seed_offset")


def run_chunk(
    prepared: PreparedSim, loop: ModuleType, *, seed: int, seed_offset: int, iterations: int
) -> ChunkResult:
    """Run global iterations ``[seed_offset, seed_offset + iterations)`` with ``loop``.

    Raises:
        InvalidRequest: iterations or seed_offset out of range.
    """
    check_range(seed_offset, iterations)
    values, metrics = run_values(
        prepared, loop, seed=seed, first=seed_offset, iterations=iterations
    )
    return ChunkResult.from_values(values, seed_offset=seed_offset, metrics=metrics)


def run_values(
    prepared: PreparedSim, loop: ModuleType, *, seed: int, first: int, iterations: int
) -> tuple[list[int], dict[str, int]]:
    """Per-iteration values of iterations ``first ..`` and the named metric sums."""
    seed &= _MASK64
    seed_lo, seed_hi = seed & 0xFFFFFFFF, seed >> 32
    model = prepared.model
    state = M.new_state(model)
    values = np.zeros(iterations, np.int64)
    head = model.mi[M.HEAD]
    n_rows = int(head[M.I_MISC_ROW]) + 1
    long_row = int(head[M.I_LONG])
    long_cols = M.L_AURA + int(head[M.I_AURAS])
    table = state.ti[M.METRICS : M.METRICS + M.N_METRIC_COLUMNS, :n_rows]
    long = state.ti[long_row:, :long_cols]
    totals = ChunkTotals(
        sums=np.zeros(table.shape, dtype=object),
        mins=np.full(table.shape, M.NO_MIN, np.int64),
        maxs=np.full(table.shape, -1, np.int64),
        long=np.zeros(long.shape, dtype=object),
    )
    for start in range(0, iterations, BLOCK):
        stop = min(iterations, start + BLOCK)
        loop.run_block(
            *state,
            seed_lo,
            seed_hi,
            first + start,
            values[start:stop],
            VALUE_SCALE * 1000,
        )
        totals.sums += table.astype(object)
        np.minimum(totals.mins, table, out=totals.mins)
        np.maximum(totals.maxs, table, out=totals.maxs)
        totals.long += long.astype(object)
    return values.tolist(), name_metrics(prepared, totals)


def metric_bound(prepared: PreparedSim) -> int:
    """Most metrics a chunk of ``prepared`` can name (the non-zero ones are sent)."""
    cfg = prepared.config
    head = prepared.model.mi[M.HEAD]
    n_ab, n_auras = len(prepared.abilities), len(prepared.auras)
    n_res, n_procs = len(prepared.resources), len(cfg.procs)
    per_target = n_ab * cfg.fight.targets if cfg.fight.targets > 1 else 0
    timelines = 2 * int(head[M.I_TL_POINTS]) + int(head[M.I_ST_POINTS]) * (1 + n_res + n_auras)
    return (
        len(MISC)
        + n_ab * (len(AB_COLUMNS) + 1 + len(AB_EXTREMES))
        + per_target
        + n_auras * len(AU_COLUMNS)
        + n_procs
        + n_res * (len(RS_COLUMNS) + 2 * (len(cfg.spells) + n_procs + 1))
        + timelines
        + int(head[M.I_SEQ_CAP])
    )


def name_metrics(prepared: PreparedSim, totals: ChunkTotals) -> dict[str, int]:
    """Name the metrics (a spell and an aura of one name share their ability metrics).

    Beyond the per-ability, aura, proc, resource and run-wide sums, only non-zero figures
    are named: per-target damage (several targets), resource gains by source, timelines,
    the sample sequence.
    """
    cfg = prepared.config
    n_spells, n_procs = len(cfg.spells), len(cfg.procs)
    _, aura_row, proc_row, res_row, misc_row = M.metric_rows(
        n_spells, len(prepared.auras), n_procs, len(prepared.resources)
    )
    sums = totals.sums.T.tolist()  # by row
    metrics: dict[str, int] = dict(zip(MISC, sums[misc_row], strict=False))
    for row, name in enumerate(prepared.abilities):
        for column, value in zip(AB_COLUMNS, sums[row], strict=False):
            key = f"ability.{name}.{column}"
            metrics[key] = metrics.get(key, 0) + value
        key = f"ability.{name}.execute_ms"
        metrics[key] = metrics.get(key, 0) + sums[row][M.AB_EXECUTE_MS]
        for extreme_column, label in AB_EXTREMES.items():
            is_min = extreme_column in M.MIN_COLUMNS
            table = totals.mins if is_min else totals.maxs
            extreme = int(table[extreme_column, row])
            if extreme in (M.NO_MIN, -1):
                continue
            key = f"ability.{name}.{label}"
            pick = min if is_min else max
            metrics[key] = pick(metrics[key], extreme) if key in metrics else extreme
        if cfg.fight.targets > 1:
            for t in range(cfg.fight.targets):
                value = sums[row][M.TARGET_DAMAGE + t]
                if value:
                    key = f"ability.{name}.target.{t}.damage"
                    metrics[key] = metrics.get(key, 0) + value
    for name, row in zip(prepared.auras, sums[aura_row:], strict=False):
        for column, value in zip(AU_COLUMNS, row, strict=False):
            metrics[f"aura.{name}.{column}"] = value
    for name, row in zip(prepared.procs, sums[proc_row:], strict=False):
        metrics[f"proc.{name}.count"] = row[M.PROC_COUNT]
    sources = [f"spell.{s.name}" for s in cfg.spells] + [f"proc.{p.name}" for p in cfg.procs]
    sources.append("regen")
    for r, name in enumerate(prepared.resources):
        for column, value in zip(RS_COLUMNS, sums[res_row + r], strict=False):
            metrics[f"resource.{name}.{column}"] = value
        for source, row in zip(sources, sums, strict=False):
            gained, overflow = row[M.GAINS + 2 * r], row[M.GAINS + 2 * r + 1]
            if gained:
                metrics[f"gain.{name}.{source}.gained"] = gained
            if overflow:
                metrics[f"gain.{name}.{source}.overflow"] = overflow
    metrics.update(_long_metrics(prepared, totals.long.tolist()))
    return metrics


def _long_metrics(prepared: PreparedSim, long: list[list[int]]) -> dict[str, int]:
    """Timelines and the sample sequence, from the long region's totals (non-zero only)."""
    series = {M.L_DAMAGE: "timeline.damage", M.L_FIGHT_MS: "timeline.fight_ms"}
    series[M.L_SAMPLES] = "timeline.samples"
    series[M.L_SEQUENCE] = "sequence"
    for r, name in enumerate(prepared.resources):
        series[M.L_RESOURCE + r] = f"timeline.resource.{name}"
    for a, name in enumerate(prepared.auras):
        series[M.L_AURA + a] = f"timeline.aura.{name}"
    metrics: dict[str, int] = {}
    for k, row in enumerate(long):
        for column, prefix in series.items():
            value = row[column]
            if value:
                metrics[f"{prefix}.{k}"] = value
    return metrics
