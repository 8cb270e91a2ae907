"""Exact, mergeable chunk results and the report built from them.

Every engine reports a chunk as a :class:`ChunkResult` of exact integers: the number of
iterations, the sum and the sum of squares of the per-iteration value (DPS in fixed point,
``VALUE_SCALE`` units per DPS), min, max, a sparse histogram over fixed job-independent
buckets at most 0.1 % wide (:mod:`wowlab_core.histogram`), and named integer metrics
(per-ability damage, aura uptime, events ...; a metric whose name ends in ``.min`` or
``.max`` is an extreme, merged by min or max). Merging is exact, so a job's merged result
(and its report) is bit-identical however it was chunked, retried or spread over nodes.
The seed design's weighted mean of chunk means lost the spread (defect 7); this keeps it
exactly.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from wowlab_core.errors import ResultInvalid
from wowlab_core.histogram import (
    BUCKET_COUNT,
    HISTOGRAM_FORMAT,
    Distribution,
    bucket_index,
    bucket_midpoint,
    bucket_range,
    convert_legacy_histogram,
    legacy_bucket_index,
)

#: Per-iteration values are integers in units of 1/VALUE_SCALE (milli-DPS).
VALUE_SCALE = 1000
#: z for a two-sided 95 % interval, as SimulationCraft uses.
Z95 = 1.96
#: Values at or above this are rejected (about 9.2e15 DPS in milli-DPS units).
MAX_VALUE = 2**63 - 1
#: A result may carry at most this many metrics (an untrusted node must not flood memory).
MAX_METRICS = 20_000
MAX_METRIC_NAME = 200
#: The quantiles of the report, by their name in ``Summary.to_dict``.
PERCENTILES: tuple[tuple[str, float], ...] = (
    ("p1", 0.01),
    ("p5", 0.05),
    ("q1", 0.25),
    ("median", 0.5),
    ("q3", 0.75),
    ("p95", 0.95),
    ("p99", 0.99),
)


#: Metrics whose names end so are extremes (``ability.x.hit.min``), merged by min / max;
#: every other metric is a sum.
MIN_SUFFIX = ".min"
MAX_SUFFIX = ".max"


def merge_metric(name: str, a: int, b: int) -> int:
    """Two chunks' values of metric ``name`` merged: min, max or (usually) the sum."""
    pick = _extreme(name)
    return pick(a, b) if pick is not None else a + b


def _extreme(name: str) -> Callable[[int, int], int] | None:
    """``min`` or ``max`` for a metric merged by its extreme (by its name); None: a sum."""
    if name.endswith(MIN_SUFFIX):
        return min
    if name.endswith(MAX_SUFFIX):
        return max
    return None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _storable(name: str) -> bool:
    """Whether a database can store ``name`` as text: no NUL (PostgreSQL refuses it in
    text and JSON) and no lone surrogate (not encodable as UTF-8)."""
    if "\x00" in name:
        return False
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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
        histogram: bucket index -> number of iterations (sparse; see
            :func:`wowlab_core.histogram.bucket_index`).
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
            metrics[k] = merge_metric(k, metrics[k], v) if k in metrics else v
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
            "histogram_format": HISTOGRAM_FORMAT,
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
    def from_dict(cls, data: Any, *, known_names: set[str] | None = None) -> ChunkResult:
        """Parse and check an untrusted result (as sent by a node, or stored).

        ``known_names``: metric names already found valid, shared by the results of one
        job as they are parsed for its merge (they repeat the same names: each is checked
        once); the names of this result that pass are added to it.

        A result without ``histogram_format`` (format 1: ~1 % buckets, from nodes and
        databases before format 2) is checked against its own buckets, then converted.

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
        fmt = data.get("histogram_format", 1)
        if not _is_int(fmt) or fmt not in (1, HISTOGRAM_FORMAT):
            raise ResultInvalid(
                f"result.histogram_format {fmt!r} is not known (upgrade the portal?)",
                field="result.histogram_format",
            )
        raw_hist = data.get("histogram", {})
        raw_metrics = data.get("metrics", {})
        if not isinstance(raw_hist, Mapping) or not isinstance(raw_metrics, Mapping):
            raise ResultInvalid("result.histogram and result.metrics must be objects")
        # Each bucket holds at least one iteration, and there are 2 x BUCKET_COUNT in all.
        if len(raw_metrics) > MAX_METRICS or len(raw_hist) > min(
            2 * BUCKET_COUNT, max(ints["count"], 0)
        ):
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
        known = known_names if known_names is not None else set()
        for k, v in raw_metrics.items():
            if type(k) is not str or k not in known:
                if not isinstance(k, str) or not k or len(k) > MAX_METRIC_NAME or not _storable(k):
                    raise ResultInvalid(f"result.metrics key {k!r} is not a valid name")
                known.add(k)
            if type(v) is not int and not _is_int(v):
                raise ResultInvalid(f"result.metrics[{k}] must be an integer")
            metrics[k] = v
        if fmt == 1:
            legacy = cls(histogram={}, metrics=metrics, **ints)
            legacy.check_sums()
            low = legacy_bucket_index(legacy.minimum)
            high = legacy_bucket_index(legacy.maximum)
            if any(b < low or b > high for b in histogram):
                raise ResultInvalid("result.histogram has buckets outside [minimum, maximum]")
            histogram = convert_legacy_histogram(histogram, legacy.minimum, legacy.maximum)
        result = cls(histogram=dict(sorted(histogram.items())), metrics=metrics, **ints)
        result.check()
        return result

    def check(self) -> None:
        """Raise :class:`ResultInvalid` unless the fields are consistent with each other."""
        self.check_sums()
        if sum(self.histogram.values()) != self.count:
            raise ResultInvalid("result.histogram does not add up to result.count")
        low = bucket_index(self.minimum)
        high = bucket_index(self.maximum)
        if any(b < low or b > high for b in self.histogram):
            raise ResultInvalid("result.histogram has buckets outside [minimum, maximum]")

    def check_sums(self) -> None:
        """Raise :class:`ResultInvalid` unless count, sums, extremes and metrics agree."""
        n = self.count
        if n <= 0 or self.seed_offset < 0:
            raise ResultInvalid("result.count must be positive and seed_offset non-negative")
        if self.minimum > self.maximum:
            raise ResultInvalid("result.minimum is greater than result.maximum")
        # Beyond the bucket table a value has no bucket range (summarize would crash).
        if max(abs(self.minimum), abs(self.maximum)) >= MAX_VALUE:
            raise ResultInvalid("result.minimum or result.maximum is out of range")
        if not n * self.minimum <= self.total <= n * self.maximum:
            raise ResultInvalid("result.total is outside count x [minimum, maximum]")
        # Cauchy-Schwarz: n * sum(x^2) >= (sum x)^2; and no square exceeds the largest.
        if self.total_sq < 0 or n * self.total_sq < self.total * self.total:
            raise ResultInvalid("result.total_sq is inconsistent with result.total")
        largest = max(abs(self.minimum), abs(self.maximum))
        if self.total_sq > n * largest * largest:
            raise ResultInvalid("result.total_sq is larger than count x maximum squared")
        values = self.metrics.values()
        if values and (max(values) > MAX_VALUE or min(values) < -MAX_VALUE):
            raise ResultInvalid("a result.metrics value is out of range")


def merge_in_seed_order(results: Iterable[ChunkResult]) -> ChunkResult:
    """Merge chunk results sorted by ``seed_offset``; they must tile one range exactly.

    The same result as merging them pairwise with :meth:`ChunkResult.merge` (integer sums,
    minima and maxima: the order of additions cannot change a bit), but in one pass over
    running totals: a job's final merge of N chunks with M metrics each costs O(N x M),
    not O(N x M log M) in copies and sorts.
    """
    ordered = sorted(results, key=lambda r: r.seed_offset)
    if not ordered:
        raise ResultInvalid("nothing to merge")
    first = ordered[0]
    end = first.seed_offset + first.count
    total, total_sq = first.total, first.total_sq
    minimum, maximum = first.minimum, first.maximum
    histogram = dict(first.histogram)
    metrics = dict(first.metrics)
    # Metrics merged by min or max (by their name's suffix); every other one is a sum.
    extreme = {k: pick for k in metrics if (pick := _extreme(k)) is not None}
    for result in ordered[1:]:
        if result.seed_offset != end:
            raise ResultInvalid(
                f"results are not contiguous: [{first.seed_offset}, {end}) "
                f"then {result.seed_offset}"
            )
        end += result.count
        total += result.total
        total_sq += result.total_sq
        minimum = min(minimum, result.minimum)
        maximum = max(maximum, result.maximum)
        for b, n in result.histogram.items():
            histogram[b] = histogram.get(b, 0) + n
        for k, v in result.metrics.items():
            old = metrics.get(k)
            if old is None:
                metrics[k] = v
                if (pick := _extreme(k)) is not None:
                    extreme[k] = pick
            elif k in extreme:
                metrics[k] = extreme[k](old, v)
            else:
                metrics[k] = old + v
    return ChunkResult(
        seed_offset=first.seed_offset,
        count=end - first.seed_offset,
        total=total,
        total_sq=total_sq,
        minimum=minimum,
        maximum=maximum,
        histogram=dict(sorted(histogram.items())),
        metrics=dict(sorted(metrics.items())),
    )


@dataclass(frozen=True, slots=True)
class Summary:
    """Statistics of a merged result, in value units (DPS, not fixed point).

    ``percentiles`` maps the names of :data:`PERCENTILES` (``p1`` .. ``p99``, with ``q1``,
    ``median`` and ``q3``) to values interpolated within the 0.1 % buckets.
    """

    iterations: int
    mean: float
    std: float
    error95: float
    error_pct: float
    minimum: float
    maximum: float
    percentiles: Mapping[str, float]

    @property
    def median(self) -> float:
        """The 50th percentile."""
        return self.percentiles["median"]

    @property
    def q1(self) -> float:
        """The 25th percentile."""
        return self.percentiles["q1"]

    @property
    def q3(self) -> float:
        """The 75th percentile."""
        return self.percentiles["q3"]

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
            **{name: round(self.percentiles[name], 3) for name, _ in PERCENTILES},
        }


def summarize(result: ChunkResult, *, scale: int = VALUE_SCALE) -> Summary:
    """Mean, standard deviation, 95 % error of the mean, extremes and percentiles.

    Variance is computed from the exact integer sums, then converted once to float, so the
    figures do not depend on how the result was merged. Percentiles are within one bucket
    (0.1 %) of the exact ones.
    """
    n = result.count
    mean = result.total / n / scale
    var_num = n * result.total_sq - result.total * result.total  # exact: n^2 * population var
    std = math.sqrt(var_num / (n * (n - 1))) / scale if n > 1 else 0.0
    error = Z95 * std / math.sqrt(n)
    dist = Distribution(result.histogram, result.minimum, result.maximum)
    return Summary(
        iterations=n,
        mean=mean,
        std=std,
        error95=error,
        error_pct=(error / mean * 100.0) if mean else 0.0,
        minimum=result.minimum / scale,
        maximum=result.maximum / scale,
        percentiles={name: dist.percentile(q) / scale for name, q in PERCENTILES},
    )


def histogram_bins(
    result: ChunkResult, *, max_bins: int | None = None, scale: int = VALUE_SCALE
) -> list[dict[str, float | int]]:
    """Display bins of the DPS histogram (see :meth:`Distribution.display_bins`)."""
    dist = Distribution(result.histogram, result.minimum, result.maximum)
    bins = dist.display_bins() if max_bins is None else dist.display_bins(max_bins=max_bins)
    return [
        {"low": round(low / scale, 3), "high": round(high / scale, 3), "count": count}
        for low, high, count in bins
    ]


def iterations_needed(summary: Summary, target_error_pct: float) -> int:
    """SimulationCraft's projection of the iterations needed to reach a target error."""
    if summary.error_pct <= target_error_pct or summary.error_pct == 0:
        return summary.iterations
    return math.ceil(summary.iterations * (summary.error_pct / target_error_pct) ** 2)


__all__: Sequence[str] = [
    "MAX_VALUE",
    "PERCENTILES",
    "VALUE_SCALE",
    "Z95",
    "ChunkResult",
    "Summary",
    "bucket_index",
    "bucket_midpoint",
    "bucket_range",
    "histogram_bins",
    "iterations_needed",
    "merge_in_seed_order",
    "merge_metric",
    "summarize",
]
