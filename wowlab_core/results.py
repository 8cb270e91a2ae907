"""Exact, mergeable chunk results and the report built from them.

Every engine reports a chunk as a :class:`ChunkResult` of exact integers: the number of
iterations, the sum and the sum of squares of the per-iteration value (DPS in fixed point,
``VALUE_SCALE`` units per DPS), min, max, a sparse histogram over fixed job-independent
buckets, and named integer metrics (per-ability damage, aura uptime, events ...). Merging
adds integers, so a job's merged result (and its report) is bit-identical however it was
chunked, retried or spread over nodes. The seed design's weighted mean of chunk means lost
the spread (defect 7); this keeps it exactly.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from wowlab_core.errors import ResultInvalid

#: Per-iteration values are integers in units of 1/VALUE_SCALE (milli-DPS).
VALUE_SCALE = 1000
#: z for a two-sided 95 % interval, as SimulationCraft uses.
Z95 = 1.96
#: Bucket widths grow by 1 % of their lower bound, so a bucket's midpoint is within 0.5 %.
BUCKET_GROWTH_DIVISOR = 100
#: Values at or above this are rejected (about 9.2e15 DPS in milli-DPS units).
MAX_VALUE = 2**63 - 1
#: A result may carry at most this many metrics (an untrusted node must not flood memory).
MAX_METRICS = 20_000
MAX_METRIC_NAME = 200


@lru_cache(maxsize=1)
def bucket_bounds() -> tuple[int, ...]:
    """Lower bounds of the histogram buckets for non-negative values.

    Integer-only recurrence (``b + max(1, b // 100)``), so every machine builds the same
    table: widths 1 below 100, then about 1 % of the value.
    """
    bounds = [0]
    b = 0
    while b < MAX_VALUE:
        b += max(1, b // BUCKET_GROWTH_DIVISOR)
        bounds.append(min(b, MAX_VALUE))
    return tuple(bounds)


def bucket_index(value: int) -> int:
    """Histogram bucket of an integer value. Negative values mirror into negative indices."""
    if value < 0:
        return -bucket_index(-value) - 1
    return bisect_right(bucket_bounds(), value) - 1


def bucket_range(index: int) -> tuple[int, int]:
    """The half-open value range ``[low, high)`` of bucket ``index``."""
    if index < 0:
        low, high = bucket_range(-index - 1)
        return -high + 1, -low + 1
    bounds = bucket_bounds()
    return bounds[index], bounds[index + 1]


def bucket_midpoint(index: int) -> int:
    """A bucket's representative value (the integer midpoint of its range)."""
    low, high = bucket_range(index)
    return (low + high - 1) // 2


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


@dataclass(slots=True)
class ChunkResult:
    """Exact summary of iterations ``[seed_offset, seed_offset + count)`` of one job.

    Attributes:
        seed_offset: global index of the first iteration covered.
        count: number of iterations covered.
        total: sum of the per-iteration values.
        total_sq: sum of the squares of the per-iteration values.
        minimum: smallest per-iteration value.
        maximum: largest per-iteration value.
        histogram: bucket index -> number of iterations (sparse; see :func:`bucket_index`).
        metrics: named integer sums (``ability.fireball.damage``, ``events`` ...).
    """

    seed_offset: int
    count: int
    total: int
    total_sq: int
    minimum: int
    maximum: int
    histogram: dict[int, int] = field(default_factory=dict)
    metrics: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_values(
        cls,
        values: Iterable[int],
        *,
        seed_offset: int,
        metrics: Mapping[str, int] | None = None,
    ) -> ChunkResult:
        """Build a result from per-iteration integer values (in iteration order)."""
        vals = [int(v) for v in values]
        if not vals:
            raise ResultInvalid("a chunk result needs at least one iteration")
        histogram: dict[int, int] = {}
        for v in vals:
            if abs(v) >= MAX_VALUE:
                raise ResultInvalid(f"value {v} is out of range")
            b = bucket_index(v)
            histogram[b] = histogram.get(b, 0) + 1
        return cls(
            seed_offset=seed_offset,
            count=len(vals),
            total=sum(vals),
            total_sq=sum(v * v for v in vals),
            minimum=min(vals),
            maximum=max(vals),
            histogram=histogram,
            metrics={k: int(v) for k, v in (metrics or {}).items()},
        )

    def merge(self, other: ChunkResult) -> ChunkResult:
        """Merge ``other``, which must cover the iterations right after this one."""
        if other.seed_offset != self.seed_offset + self.count:
            raise ResultInvalid(
                f"results are not contiguous: [{self.seed_offset}, "
                f"{self.seed_offset + self.count}) then {other.seed_offset}"
            )
        histogram = dict(self.histogram)
        for b, n in other.histogram.items():
            histogram[b] = histogram.get(b, 0) + n
        metrics = dict(self.metrics)
        for k, v in other.metrics.items():
            metrics[k] = metrics.get(k, 0) + v
        return ChunkResult(
            seed_offset=self.seed_offset,
            count=self.count + other.count,
            total=self.total + other.total,
            total_sq=self.total_sq + other.total_sq,
            minimum=min(self.minimum, other.minimum),
            maximum=max(self.maximum, other.maximum),
            histogram=dict(sorted(histogram.items())),
            metrics=dict(sorted(metrics.items())),
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (histogram keys become strings, sorted numerically)."""
        return {
            "seed_offset": self.seed_offset,
            "count": self.count,
            "total": self.total,
            "total_sq": self.total_sq,
            "minimum": self.minimum,
            "maximum": self.maximum,
            "histogram": {str(k): v for k, v in sorted(self.histogram.items())},
            "metrics": dict(sorted(self.metrics.items())),
        }

    @classmethod
    def from_dict(cls, data: Any) -> ChunkResult:
        """Parse and check an untrusted result (as sent by a node).

        Raises:
            ResultInvalid: a field is missing, not an integer, or inconsistent.
        """
        if not isinstance(data, Mapping):
            raise ResultInvalid("result must be a JSON object")
        ints: dict[str, int] = {}
        for name in ("seed_offset", "count", "total", "total_sq", "minimum", "maximum"):
            value = data.get(name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ResultInvalid(f"result.{name} must be an integer", field=f"result.{name}")
            ints[name] = value
        raw_hist = data.get("histogram", {})
        raw_metrics = data.get("metrics", {})
        if not isinstance(raw_hist, Mapping) or not isinstance(raw_metrics, Mapping):
            raise ResultInvalid("result.histogram and result.metrics must be objects")
        if len(raw_metrics) > MAX_METRICS or len(raw_hist) > len(bucket_bounds()) * 2:
            raise ResultInvalid("result has too many metrics or histogram buckets")
        histogram: dict[int, int] = {}
        for k, v in raw_hist.items():
            try:
                b = int(k)
            except (TypeError, ValueError):
                raise ResultInvalid(f"result.histogram key {k!r} is not an integer") from None
            if not _is_int(v) or v <= 0:
                raise ResultInvalid(f"result.histogram[{k}] must be a positive integer")
            histogram[b] = v
        metrics: dict[str, int] = {}
        for k, v in raw_metrics.items():
            if not isinstance(k, str) or not k or len(k) > MAX_METRIC_NAME:
                raise ResultInvalid(f"result.metrics key {k!r} is not a valid name")
            if not _is_int(v):
                raise ResultInvalid(f"result.metrics[{k}] must be an integer")
            metrics[k] = v
        result = cls(histogram=dict(sorted(histogram.items())), metrics=metrics, **ints)
        result.check()
        return result

    def check(self) -> None:
        """Raise :class:`ResultInvalid` unless the fields are consistent with each other."""
        n = self.count
        if n <= 0 or self.seed_offset < 0:
            raise ResultInvalid("result.count must be positive and seed_offset non-negative")
        if self.minimum > self.maximum:
            raise ResultInvalid("result.minimum is greater than result.maximum")
        # Beyond the bucket table a value has no bucket range (summarize would crash).
        if max(abs(self.minimum), abs(self.maximum)) >= MAX_VALUE:
            raise ResultInvalid("result.minimum or result.maximum is out of range")
        if sum(self.histogram.values()) != n:
            raise ResultInvalid("result.histogram does not add up to result.count")
        if not n * self.minimum <= self.total <= n * self.maximum:
            raise ResultInvalid("result.total is outside count x [minimum, maximum]")
        # Cauchy-Schwarz: n * sum(x^2) >= (sum x)^2.
        if self.total_sq < 0 or n * self.total_sq < self.total * self.total:
            raise ResultInvalid("result.total_sq is inconsistent with result.total")
        low = bucket_index(self.minimum)
        high = bucket_index(self.maximum)
        if any(b < low or b > high for b in self.histogram):
            raise ResultInvalid("result.histogram has buckets outside [minimum, maximum]")


def merge_in_seed_order(results: Iterable[ChunkResult]) -> ChunkResult:
    """Merge chunk results sorted by ``seed_offset``; they must tile one range exactly."""
    ordered = sorted(results, key=lambda r: r.seed_offset)
    if not ordered:
        raise ResultInvalid("nothing to merge")
    merged = ordered[0]
    for result in ordered[1:]:
        merged = merged.merge(result)
    return merged


def _percentile(histogram: Mapping[int, int], count: int, q: float, lo: int, hi: int) -> int:
    """Nearest-rank percentile from the histogram, clamped to the exact min and max."""
    rank = max(1, math.ceil(q * count))
    seen = 0
    for b, n in sorted(histogram.items()):
        seen += n
        if seen >= rank:
            return min(max(bucket_midpoint(b), lo), hi)
    return hi


@dataclass(frozen=True, slots=True)
class Summary:
    """Statistics of a merged result, in value units (DPS, not fixed point)."""

    iterations: int
    mean: float
    std: float
    error95: float
    error_pct: float
    minimum: float
    maximum: float
    median: float
    q1: float
    q3: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form with values rounded to 3 decimals (deterministic)."""
        return {
            "iterations": self.iterations,
            "mean": round(self.mean, 3),
            "std": round(self.std, 3),
            "error95": round(self.error95, 3),
            "error_pct": round(self.error_pct, 4),
            "min": round(self.minimum, 3),
            "max": round(self.maximum, 3),
            "median": round(self.median, 3),
            "q1": round(self.q1, 3),
            "q3": round(self.q3, 3),
        }


def summarize(result: ChunkResult, *, scale: int = VALUE_SCALE) -> Summary:
    """Mean, standard deviation, 95 % error of the mean, extremes and quartiles.

    Variance is computed from the exact integer sums, then converted once to float, so the
    figures do not depend on how the result was merged.
    """
    n = result.count
    mean = result.total / n / scale
    var_num = n * result.total_sq - result.total * result.total  # exact: n^2 * population var
    std = math.sqrt(var_num / (n * (n - 1))) / scale if n > 1 else 0.0
    error = Z95 * std / math.sqrt(n)
    hist, lo, hi = result.histogram, result.minimum, result.maximum
    return Summary(
        iterations=n,
        mean=mean,
        std=std,
        error95=error,
        error_pct=(error / mean * 100.0) if mean else 0.0,
        minimum=lo / scale,
        maximum=hi / scale,
        median=_percentile(hist, n, 0.5, lo, hi) / scale,
        q1=_percentile(hist, n, 0.25, lo, hi) / scale,
        q3=_percentile(hist, n, 0.75, lo, hi) / scale,
    )


def histogram_bins(
    result: ChunkResult, *, bins: int = 50, scale: int = VALUE_SCALE
) -> list[dict[str, float | int]]:
    """Regroup the fine histogram into at most ``bins`` equal-width display bins."""
    lo, hi = result.minimum, result.maximum
    width = max(1, -(-(hi - lo + 1) // bins))
    counts: dict[int, int] = {}
    for b, n in result.histogram.items():
        slot = min((min(max(bucket_midpoint(b), lo), hi) - lo) // width, bins - 1)
        counts[slot] = counts.get(slot, 0) + n
    return [
        {
            "low": round((lo + s * width) / scale, 3),
            "high": round((lo + (s + 1) * width) / scale, 3),
            "count": counts.get(s, 0),
        }
        for s in range(min(bins, -(-(hi - lo + 1) // width)))
    ]


def iterations_needed(summary: Summary, target_error_pct: float) -> int:
    """SimulationCraft's projection of the iterations needed to reach a target error."""
    if summary.error_pct <= target_error_pct or summary.error_pct == 0:
        return summary.iterations
    return math.ceil(summary.iterations * (summary.error_pct / target_error_pct) ** 2)


__all__: Sequence[str] = [
    "MAX_VALUE",
    "VALUE_SCALE",
    "Z95",
    "ChunkResult",
    "Summary",
    "bucket_bounds",
    "bucket_index",
    "bucket_midpoint",
    "bucket_range",
    "histogram_bins",
    "iterations_needed",
    "merge_in_seed_order",
    "summarize",
]
