"""Comparing variants of a config: stat weights and profile sets, with common random numbers.

A *compare document* is a config an engine may accept in place of a plain one::

    {"compare": {"base": CONFIG,
                 "variants": [{"name": "crit", "stats": {"crit": 1000}},
                              {"name": "bis", "patch": {...JSON merge patch of CONFIG...}}],
                 "iteration_offset": 0}}

The engine runs iteration ``k`` of every variant (and of the base, named ``base``) with the
randomness of ``(seed, iteration_offset + k)``: common random numbers, so differences between
variants are measured on the same fights and their error shrinks (SimC's scale factors work
the same way). Next to the base's own result, a chunk carries exact integer sums per variant
and per pair of variants (names below), so paired differences and their errors are exact and
merge like any other metric. Variant names are lower-case identifiers other than ``base``.

Metrics (per-iteration values ``x`` in the result's fixed-point units):

* ``compare.<v>.n``, ``compare.<v>.sum``, ``compare.<v>.sum_sq``: iterations, sum x, sum x^2;
* ``compare.<a>.<b>.n``, ``.diff``, ``.diff_sq`` (``a < b``): iterations both ran,
  sum (x_a - x_b), sum (x_a - x_b)^2 over them.

A profile set runs in stages (Raidbots' Top Gear): every variant at low precision, then only
the contenders, each stage a job whose ``iteration_offset`` continues where the last one ended,
so the sums of all stages add up per variant. Everything here is a pure function of those
sums, so the ranking is the same however each stage was chunked.
"""

from __future__ import annotations

import copy
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wowlab_core.errors import InvalidRequest
from wowlab_core.results import VALUE_SCALE, Z95

BASE = "base"
PREFIX = "compare."
MAX_VARIANTS = 64
NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
#: Stages of a profile set: target errors (% of the mean, 95 %), as Raidbots' Smart Sim.
STAGE_ERRORS = (1.0, 0.2)
#: Iterations of the first stage (SimC checks the error every 100 iterations).
FIRST_STAGE_ITERATIONS = 100
#: A variant is culled when the best leads it by more than this many 95 % errors of their
#: paired difference (Raidbots: within 2 x error of the best is a sidegrade).
CULL_ERRORS = 2.0


# --- documents ------------------------------------------------------------------------------


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch: objects merge recursively, ``null`` deletes, else replace."""
    if not isinstance(patch, Mapping):
        return copy.deepcopy(patch)
    out = dict(target) if isinstance(target, Mapping) else {}
    for key, value in patch.items():
        if value is None:
            out.pop(key, None)
        else:
            out[key] = merge_patch(out.get(key), value)
    return out


def check_name(name: Any, what: str = "variant name") -> str:
    """A variant name: a lower-case identifier, not ``base``."""
    if not isinstance(name, str) or not NAME.match(name) or name == BASE:
        raise InvalidRequest(
            f"{what} {name!r} must be a lower-case identifier (letters, digits, _) "
            f"other than '{BASE}'",
            field="variants",
        )
    return name


def compare_document(
    base: Any,
    variants: Sequence[Mapping[str, Any]],
    *,
    iteration_offset: int = 0,
    profileset: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The compare document of ``variants`` (``{"name", "patch"|"stats"}``) of ``base``;
    ``profileset`` places a profile-set stage in its chain (see profileset_chain)."""
    names = [check_name(v.get("name")) for v in variants]
    if len(set(names)) != len(names):
        raise InvalidRequest("variant names must be unique", field="variants")
    if len(names) > MAX_VARIANTS:
        raise InvalidRequest(f"give at most {MAX_VARIANTS} variants", field="variants")
    compare: dict[str, Any] = {
        "base": base,
        "variants": [dict(v) for v in variants],
        "iteration_offset": iteration_offset,
    }
    if profileset is not None:
        compare["profileset"] = dict(profileset)
    return {"compare": compare}


# --- sums -----------------------------------------------------------------------------------


@dataclass
class CompareSums:
    """Exact sums per variant (``n``, ``sum``, ``sum_sq``) and per pair (``n``, ``diff``,
    ``diff_sq``)."""

    variants: dict[str, list[int]] = field(default_factory=dict)
    pairs: dict[tuple[str, str], list[int]] = field(default_factory=dict)

    @classmethod
    def from_metrics(cls, metrics: Mapping[str, int]) -> CompareSums:
        """Read the ``compare.*`` metrics of a merged result (or a report's copy of them)."""
        sums = cls()
        for key, value in metrics.items():
            if not key.startswith(PREFIX):
                continue
            parts = key[len(PREFIX) :].split(".")
            if len(parts) == 2 and parts[1] in ("n", "sum", "sum_sq"):
                row = sums.variants.setdefault(parts[0], [0, 0, 0])
                row[("n", "sum", "sum_sq").index(parts[1])] = int(value)
            elif len(parts) == 3 and parts[2] in ("n", "diff", "diff_sq"):
                row = sums.pairs.setdefault((parts[0], parts[1]), [0, 0, 0])
                row[("n", "diff", "diff_sq").index(parts[2])] = int(value)
        return sums

    def merge(self, other: CompareSums) -> CompareSums:
        """Add another stage's sums (disjoint iterations)."""
        out = CompareSums(
            variants={k: list(v) for k, v in self.variants.items()},
            pairs={k: list(v) for k, v in self.pairs.items()},
        )
        for table, theirs in ((out.variants, other.variants), (out.pairs, other.pairs)):
            for key, row in theirs.items():
                mine = table.setdefault(key, [0, 0, 0])  # type: ignore[arg-type]
                for i in range(3):
                    mine[i] += row[i]
        return out


def pair_key(a: str, b: str) -> tuple[str, str]:
    """The key of a pair (names in sorted order)."""
    return (a, b) if a < b else (b, a)


def compare_metrics(values: Mapping[str, Sequence[int]]) -> dict[str, int]:
    """The ``compare.*`` metrics of per-iteration values by variant (same iterations)."""
    metrics: dict[str, int] = {}
    names = sorted(values)
    ints = {name: [int(x) for x in values[name]] for name in names}
    for name in names:
        xs = ints[name]
        metrics[f"{PREFIX}{name}.n"] = len(xs)
        metrics[f"{PREFIX}{name}.sum"] = sum(xs)
        metrics[f"{PREFIX}{name}.sum_sq"] = sum(x * x for x in xs)
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            diffs = [x - y for x, y in zip(ints[a], ints[b], strict=True)]
            metrics[f"{PREFIX}{a}.{b}.n"] = len(diffs)
            metrics[f"{PREFIX}{a}.{b}.diff"] = sum(diffs)
            metrics[f"{PREFIX}{a}.{b}.diff_sq"] = sum(d * d for d in diffs)
    return metrics


# --- statistics ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Estimate:
    """A mean (or mean difference) in value units with its 95 % error."""

    n: int
    mean: float
    error95: float

    @property
    def error_pct(self) -> float:
        """The 95 % error as a percentage of the mean."""
        return abs(self.error95 / self.mean) * 100.0 if self.mean else 0.0


def _estimate(n: int, total: int, total_sq: int, scale: int) -> Estimate:
    if n == 0:
        return Estimate(0, 0.0, math.inf)
    var_num = n * total_sq - total * total  # exact: n^2 x population variance
    std = math.sqrt(max(var_num, 0) / (n * (n - 1))) / scale if n > 1 else math.inf
    return Estimate(n, total / n / scale, Z95 * std / math.sqrt(n))


def variant_estimate(sums: CompareSums, name: str, *, scale: int = VALUE_SCALE) -> Estimate:
    """Mean and 95 % error of one variant (base included)."""
    n, total, total_sq = sums.variants.get(name, [0, 0, 0])
    return _estimate(n, total, total_sq, scale)


def paired_difference(sums: CompareSums, a: str, b: str, *, scale: int = VALUE_SCALE) -> Estimate:
    """Mean of ``x_a - x_b`` over the iterations both ran, with its paired 95 % error."""
    if a == b:
        return Estimate(sums.variants.get(a, [0])[0], 0.0, 0.0)
    n, diff, diff_sq = sums.pairs.get(pair_key(a, b), [0, 0, 0])
    if n == 0:
        return unpaired_difference(sums, a, b, scale=scale)
    return _estimate(n, diff if a < b else -diff, diff_sq, scale)


def unpaired_difference(sums: CompareSums, a: str, b: str, *, scale: int = VALUE_SCALE) -> Estimate:
    """The same difference with the error independent runs would have (no pairing)."""
    ea, eb = variant_estimate(sums, a, scale=scale), variant_estimate(sums, b, scale=scale)
    return Estimate(min(ea.n, eb.n), ea.mean - eb.mean, math.hypot(ea.error95, eb.error95))


# --- scale factors -------------------------------------------------------------------------


def scale_factor_variants(stats: Iterable[str], delta: float) -> list[dict[str, Any]]:
    """One variant per stat, named after it, with ``+delta`` of that stat."""
    out = []
    for stat in stats:
        check_name(stat, "stat")
        out.append({"name": stat, "stats": {stat: delta}})
    if not out:
        raise InvalidRequest("give at least one stat", field="scale_factors")
    return out


def scale_factors(
    sums: CompareSums, stats: Sequence[str], delta: float, *, primary: str = "primary"
) -> list[dict[str, Any]]:
    """SimC's scale factors: ``(DPS(+delta) - DPS(base)) / delta`` per stat, with paired
    95 % errors, and normalised to the primary stat (``sf / sf_primary``, error likewise).
    """
    rows = []
    factors: dict[str, Estimate] = {}
    for stat in stats:
        diff = paired_difference(sums, stat, BASE)
        factors[stat] = Estimate(diff.n, diff.mean / delta, diff.error95 / delta)
    norm = factors.get(primary)
    for stat in stats:
        f = factors[stat]
        row: dict[str, Any] = {
            "stat": stat,
            "per_point": round(f.mean, 6),
            "error95": round(f.error95, 6),
        }
        if norm is not None and norm.mean:
            row["normalized"] = round(f.mean / norm.mean, 4)
            row["normalized_error95"] = round(f.error95 / abs(norm.mean), 4)
        rows.append(row)
    return rows


# --- ranking and staged culling ----------------------------------------------------------------


@dataclass(frozen=True)
class Stage:
    """The next stage of a profile set: who runs, from which iteration, how many."""

    number: int
    variants: tuple[str, ...]
    iteration_offset: int
    iterations: int
    target_error: float


def contenders(sums: CompareSums, active: Sequence[str]) -> tuple[str, ...]:
    """The active variants not clearly behind the best (paired, ``CULL_ERRORS`` x error).

    The base always stays: it is the reference every stage runs (and reports in detail).
    """
    if len(active) <= 1:
        return tuple(active)
    best = max(active, key=lambda v: (variant_estimate(sums, v).mean, v))
    kept = []
    for v in active:
        d = paired_difference(sums, best, v)
        if v in (best, BASE) or d.mean <= CULL_ERRORS * d.error95:
            kept.append(v)
    return tuple(kept)


def _needed(sums: CompareSums, names: Sequence[str], target: float) -> int:
    """Iterations the worst of ``names`` needs for ``target`` % error (SimC's projection)."""
    worst = 0
    for v in names:
        e = variant_estimate(sums, v)
        if e.error_pct > target:
            worst = max(worst, math.ceil(e.n * (e.error_pct / target) ** 2))
        else:
            worst = max(worst, e.n)
    return worst


def next_stage(
    sums: CompareSums,
    active: Sequence[str],
    *,
    target_error: float,
    done: int,
    number: int,
    max_iterations: int,
    first_iterations: int = FIRST_STAGE_ITERATIONS,
) -> Stage | None:
    """The next stage after ``done`` iterations of ``active`` (None: finished).

    Stage 1 runs every variant for ``first_iterations``; then the contenders run until the
    worst of them reaches the next stage error (1 %, 0.2 %, then ``target_error``).
    """
    if done == 0:
        n = min(first_iterations, max_iterations)
        return Stage(1, tuple(active), 0, n, max(STAGE_ERRORS[0], target_error))
    kept = contenders(sums, active)
    for stage_error in (*[e for e in STAGE_ERRORS if e > target_error], target_error):
        needed = min(_needed(sums, kept, stage_error), max_iterations)
        if needed > done:
            # At least a quarter more, so a stage is never a sliver (as the portal does).
            extra = min(max(needed - done, done // 4, 1), max_iterations - done)
            return Stage(number, kept, done, extra, stage_error)
    return None


def ranking(
    sums: CompareSums, culled_at: Mapping[str, int], *, scale: int = VALUE_SCALE
) -> list[dict[str, Any]]:
    """Variants best first, with errors, the paired difference to the best, and their stage.

    The best is the finalist (never culled) with the highest mean. Every variant is ranked
    by its paired difference to the best over the iterations both ran: a culled variant's
    own mean covers fewer (and other) fights than the finalists', so only the paired
    difference compares it fairly (common random numbers).
    """
    names = sorted(sums.variants)
    estimates = {v: variant_estimate(sums, v, scale=scale) for v in names}
    finalists = [v for v in names if v not in culled_at] or names
    best = max(finalists, key=lambda v: (estimates[v].mean, v))
    diffs = {v: paired_difference(sums, v, best, scale=scale) for v in names}
    order = sorted(names, key=lambda v: (v != best, -diffs[v].mean, v))
    rows = []
    for rank, v in enumerate(order, 1):
        e, d = estimates[v], diffs[v]
        rows.append(
            {
                "rank": rank,
                "name": v,
                "dps": round(e.mean, 3),
                "error95": round(e.error95, 3),
                "error_pct": round(e.error_pct, 4),
                "vs_best": round(d.mean, 3),
                "vs_best_error95": round(d.error95, 3),
                "iterations": e.n,
                "culled_after_stage": culled_at.get(v),
            }
        )
    return rows


__all__ = [
    "BASE",
    "CULL_ERRORS",
    "MAX_VARIANTS",
    "CompareSums",
    "Estimate",
    "Stage",
    "compare_document",
    "compare_metrics",
    "contenders",
    "merge_patch",
    "next_stage",
    "paired_difference",
    "ranking",
    "scale_factor_variants",
    "scale_factors",
    "unpaired_difference",
    "variant_estimate",
]
