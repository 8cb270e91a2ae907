"""Run a chunk of iterations on a kernel build and return the exact :class:`ChunkResult`."""

from __future__ import annotations

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

AB_COLUMNS = (
    "damage",
    "direct_damage",
    "executes",
    "hits",
    "crits",
    "ticks",
    "tick_damage",
    "tick_crits",
)
AU_COLUMNS = ("uptime_ms", "triggers", "refreshes")
RS_COLUMNS = ("overflow", "gained", "spent")
MISC = ("events", "fight_ms", "iterations_truncated", "hits_clipped", "damage_events")


def run_chunk(
    prepared: PreparedSim, loop: ModuleType, *, seed: int, seed_offset: int, iterations: int
) -> ChunkResult:
    """Run global iterations ``[seed_offset, seed_offset + iterations)`` with ``loop``.

    Raises:
        InvalidRequest: iterations or seed_offset out of range.
    """
    if not 1 <= iterations <= MAX_ITERATIONS_PER_CHUNK:
        raise InvalidRequest(
            f"iterations must be between 1 and {MAX_ITERATIONS_PER_CHUNK}", field="iterations"
        )
    if not 0 <= seed_offset < 2**62:
        raise InvalidRequest("seed_offset must be between 0 and 2**62", field="seed_offset")
    seed &= _MASK64
    seed_lo, seed_hi = seed & 0xFFFFFFFF, seed >> 32
    model = prepared.model
    state = M.new_state(model)
    values = np.zeros(iterations, np.int64)
    n_rows = int(model.mi[M.HEAD, M.I_MISC_ROW]) + 1
    totals = [[0] * n_rows for _ in range(M.N_METRIC_COLUMNS)]
    for start in range(0, iterations, BLOCK):
        stop = min(iterations, start + BLOCK)
        loop.run_block(
            *state,
            seed_lo,
            seed_hi,
            seed_offset + start,
            values[start:stop],
            VALUE_SCALE * 1000,
        )
        block = state.ti[M.METRICS : M.METRICS + M.N_METRIC_COLUMNS, :n_rows].tolist()
        for column, block_column in zip(totals, block, strict=True):
            for i, value in enumerate(block_column):
                column[i] += value
    rows = [list(row) for row in zip(*totals, strict=True)]
    return ChunkResult.from_values(
        values.tolist(), seed_offset=seed_offset, metrics=name_metrics(prepared, rows)
    )


def name_metrics(prepared: PreparedSim, totals: list[list[int]]) -> dict[str, int]:
    """Name the rows of the metrics table (a spell and an aura of one name share a row)."""
    cfg = prepared.config
    _, aura_row, proc_row, res_row, misc_row = M.metric_rows(
        len(cfg.spells), len(prepared.auras), len(cfg.procs), len(prepared.resources)
    )
    metrics: dict[str, int] = dict(zip(MISC, totals[misc_row], strict=False))
    for name, row in zip(prepared.abilities, totals, strict=False):
        for column, value in zip(AB_COLUMNS, row, strict=False):
            key = f"ability.{name}.{column}"
            metrics[key] = metrics.get(key, 0) + value
    for name, row in zip(prepared.auras, totals[aura_row:], strict=False):
        for column, value in zip(AU_COLUMNS, row, strict=False):
            metrics[f"aura.{name}.{column}"] = value
    for name, row in zip(prepared.procs, totals[proc_row:], strict=False):
        metrics[f"proc.{name}.count"] = row[M.PROC_COUNT]
    for name, row in zip(prepared.resources, totals[res_row:], strict=False):
        for column, value in zip(RS_COLUMNS, row, strict=False):
            metrics[f"resource.{name}.{column}"] = value
    return metrics
