"""The DPS histogram of a chunk result: HDR-style buckets, percentiles and display bins.

Buckets are log-linear, as in HdrHistogram with 3 significant digits: values below
``EXACT_LIMIT`` (2048) have a bucket each; above, every power-of-two range
``[2**k, 2**(k+1))`` is cut into ``SUB_BUCKETS`` (1024) equal buckets, so a bucket is at
most ``1/1024`` (0.098 %) of its values wide. Indices are computed with integer shifts
only, so every machine puts a value in the same bucket; counts are integers and two
histograms merge by adding counts, exactly.

Size: a result's buckets lie between the buckets of its minimum and maximum, so it has at
most ``bucket_index(max) - bucket_index(min) + 1`` of them (and at most one per
iteration): about 1024 per doubling of the value. DPS spread over +-25 % of its mean needs
at most ~740 buckets; 0 to 1M DPS (in milli-DPS) at most 2048 + 20 x 1024 = 22,528. The
whole table has ``BUCKET_COUNT`` non-negative indices (values below 2**63), mirrored for
negative values.

Results stored before this format (``histogram_format`` 1: buckets ~1 % wide, see
:func:`legacy_bucket_range`) are converted on read by :func:`convert_legacy_histogram`.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from functools import lru_cache

#: The format of the histogram in ``ChunkResult.to_dict`` (1: the old ~1 % buckets).
HISTOGRAM_FORMAT = 2
#: Bits of the value kept below its leading bit: a bucket is at most 2**-10 of its values.
SIGNIFICANT_BITS = 10
#: Buckets per power of two above the exact range.
SUB_BUCKETS = 1 << SIGNIFICANT_BITS
#: Values below this have a bucket of their own (width 1).
EXACT_LIMIT = 2 * SUB_BUCKETS
#: Largest value + 1 a bucket exists for (as results.MAX_VALUE + 1).
VALUE_LIMIT = 2**63
#: Non-negative bucket indices: ``0 .. BUCKET_COUNT - 1`` (negative values mirror them).
BUCKET_COUNT = (VALUE_LIMIT.bit_length() - 1 - SIGNIFICANT_BITS) * SUB_BUCKETS + SUB_BUCKETS

#: Display bins: at most this many, and coarsened while one is empty down to MIN_BINS.
MAX_DISPLAY_BINS = 60
MIN_DISPLAY_BINS = 5


def bucket_index(value: int) -> int:
    """Histogram bucket of an integer value. Negative values mirror into negative indices."""
    if value < 0:
        return -bucket_index(-value) - 1
    shift = max(0, value.bit_length() - SIGNIFICANT_BITS - 1)
    return shift * SUB_BUCKETS + (value >> shift)


def bucket_range(index: int) -> tuple[int, int]:
    """The half-open value range ``[low, high)`` of bucket ``index``."""
    if index < 0:
        low, high = bucket_range(-index - 1)
        return -high + 1, -low + 1
    if index < EXACT_LIMIT:
        return index, index + 1
    shift = index // SUB_BUCKETS - 1
    mantissa = index - shift * SUB_BUCKETS
    return mantissa << shift, (mantissa + 1) << shift


def bucket_midpoint(index: int) -> int:
    """A bucket's representative value (the integer midpoint of its range)."""
    low, high = bucket_range(index)
    return (low + high - 1) // 2


def bucket_width(index: int) -> int:
    """How many integers bucket ``index`` holds (a power of two)."""
    low, high = bucket_range(index)
    return high - low


# --------------------------------------------------------------------------- format 1


@lru_cache(maxsize=1)
def legacy_bucket_bounds() -> tuple[int, ...]:
    """Lower bounds of the format-1 buckets (``b + max(1, b // 100)`` from 0 to 2**63 - 1)."""
    bounds = [0]
    b = 0
    while b < VALUE_LIMIT - 1:
        b += max(1, b // 100)
        bounds.append(min(b, VALUE_LIMIT - 1))
    return tuple(bounds)


def legacy_bucket_index(value: int) -> int:
    """The format-1 bucket of ``value`` (what stored results before format 2 hold)."""
    if value < 0:
        return -legacy_bucket_index(-value) - 1
    return bisect_right(legacy_bucket_bounds(), value) - 1


def legacy_bucket_range(index: int) -> tuple[int, int]:
    """The half-open value range of format-1 bucket ``index``."""
    if index < 0:
        low, high = legacy_bucket_range(-index - 1)
        return -high + 1, -low + 1
    bounds = legacy_bucket_bounds()
    return bounds[index], bounds[index + 1]


def convert_legacy_histogram(
    histogram: Mapping[int, int], minimum: int, maximum: int
) -> dict[int, int]:
    """A format-1 histogram in format-2 buckets: each old bucket's count goes to the bucket
    of its midpoint (clamped to the result's range). Deterministic, so results converted
    on different machines still merge and compare equal; as precise as the old buckets."""
    converted: dict[int, int] = {}
    for index, count in histogram.items():
        low, high = legacy_bucket_range(index)
        value = min(max((low + high - 1) // 2, minimum), maximum)
        b = bucket_index(value)
        converted[b] = converted.get(b, 0) + count
    return dict(sorted(converted.items()))


# --------------------------------------------------------------------------- statistics


class Distribution:
    """Percentiles and display bins of a histogram of ``count`` integer values in
    ``[minimum, maximum]``. Pure integer input, so every machine computes the same floats."""

    def __init__(self, histogram: Mapping[int, int], minimum: int, maximum: int) -> None:
        self.items = sorted(histogram.items())
        self.minimum, self.maximum = minimum, maximum
        self.count = sum(n for _, n in self.items)
        # cumulative[i]: how many values lie in buckets before items[i]
        self.cumulative: list[int] = []
        seen = 0
        for _, n in self.items:
            self.cumulative.append(seen)
            seen += n

    def value_at_rank(self, rank: int) -> float:
        """Estimate of the ``rank``-th smallest value (0-based): a bucket's ``n`` values are
        taken as spread evenly over the integers it holds within ``[minimum, maximum]``."""
        i = bisect_right(self.cumulative, rank) - 1
        index, n = self.items[i]
        low, high = bucket_range(index)
        low, last = max(low, self.minimum), min(high - 1, self.maximum)
        return low + (last - low) * (rank - self.cumulative[i] + 0.5) / n

    def percentile(self, q: float) -> float:
        """The ``q`` quantile (0..1), interpolated between ranks as numpy's default
        (``linear``) method does with exact values; within one bucket width of it."""
        if self.count == 0:
            raise ValueError("an empty histogram has no percentiles")
        position = q * (self.count - 1)
        below = math.floor(position)
        value = self.value_at_rank(below)
        if position > below:
            value += (self.value_at_rank(below + 1) - value) * (position - below)
        return min(max(value, float(self.minimum)), float(self.maximum))

    def display_bins(
        self, *, max_bins: int = MAX_DISPLAY_BINS, min_bins: int = MIN_DISPLAY_BINS
    ) -> list[tuple[int, int, int]]:
        """Equal-width bins ``(low, high, count)`` over the data's real range.

        The bin count starts from the Freedman-Diaconis rule (the square-root rule when the
        quartiles coincide), capped at ``max_bins``. The width is a multiple of the widest
        bucket in range and the edges are multiples of the width, so every edge is a bucket
        edge and each bucket falls in exactly one bin (exact counts, no smearing). While a
        bin is empty and more than ``min_bins`` remain, the bins are widened: a gap that
        survives that is in the data.
        """
        lo, hi = self.minimum, self.maximum
        span = hi - lo + 1
        unit = max(bucket_width(bucket_index(lo)), bucket_width(bucket_index(hi)))
        iqr = self.percentile(0.75) - self.percentile(0.25)
        if iqr > 0:
            wanted = math.ceil(span / (2 * iqr / self.count ** (1 / 3)))
        else:
            wanted = math.ceil(math.sqrt(self.count))
        wanted = min(max(wanted, 1), max_bins)
        units = max(1, -(-span // (wanted * unit)))
        while True:
            width = units * unit
            start = lo // width * width
            counts = [0] * ((hi - start) // width + 1)
            for index, n in self.items:
                low, _ = bucket_range(index)
                counts[(min(max(low, lo), hi) - start) // width] += n
            fits = len(counts) <= max(max_bins, 1)
            widest = width > abs(lo) + abs(hi)  # wider cannot make fewer bins
            if widest or (fits and (all(counts) or len(counts) <= min_bins)):
                edges = [start + i * width for i in range(len(counts) + 1)]
                return list(zip(edges, edges[1:], counts, strict=False))
            units = max(units + 1, math.ceil(units * 1.25))  # about 20 % fewer bins


__all__: Sequence[str] = [
    "BUCKET_COUNT",
    "EXACT_LIMIT",
    "HISTOGRAM_FORMAT",
    "MAX_DISPLAY_BINS",
    "MIN_DISPLAY_BINS",
    "SIGNIFICANT_BITS",
    "SUB_BUCKETS",
    "Distribution",
    "bucket_index",
    "bucket_midpoint",
    "bucket_range",
    "bucket_width",
    "convert_legacy_histogram",
    "legacy_bucket_bounds",
    "legacy_bucket_index",
    "legacy_bucket_range",
]
