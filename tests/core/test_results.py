"""Exact, mergeable chunk results (``wowlab_core.results``): buckets, merging, untrusted
input, and the report statistics."""

from __future__ import annotations

import itertools
import json
import math
import random
import statistics
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from wowlab_core.errors import ResultInvalid
from wowlab_core.histogram import BUCKET_COUNT
from wowlab_core.results import (
    MAX_VALUE,
    PERCENTILES,
    Z95,
    ChunkResult,
    Summary,
    bucket_index,
    bucket_midpoint,
    bucket_range,
    histogram_bins,
    iterations_needed,
    merge_in_seed_order,
    summarize,
)

# Values a real engine reports (milli-DPS), plus negatives and the small exact range.
VALUES = st.one_of(
    st.integers(min_value=-200, max_value=200),
    st.integers(min_value=-(10**12), max_value=10**12),
)
VALUE_LISTS = st.lists(VALUES, min_size=1, max_size=200)
IN_RANGE = st.integers(min_value=-(MAX_VALUE - 1), max_value=MAX_VALUE - 1)


@st.composite
def split_values(draw: st.DrawFn) -> tuple[list[int], list[list[int]], int]:
    """A value list, the same list cut at random points, and a start offset."""
    values = draw(VALUE_LISTS)
    cuts: set[int] = set()
    if len(values) > 1:
        cuts = draw(st.sets(st.integers(min_value=1, max_value=len(values) - 1), max_size=10))
    bounds = [0, *sorted(cuts), len(values)]
    pieces = [values[a:b] for a, b in itertools.pairwise(bounds)]
    start = draw(st.integers(min_value=0, max_value=10**9))
    return values, pieces, start


def chunk_results(pieces: list[list[int]], start: int) -> list[ChunkResult]:
    results, offset = [], start
    for piece in pieces:
        results.append(ChunkResult.from_values(piece, seed_offset=offset))
        offset += len(piece)
    return results


def valid_dict() -> dict[str, Any]:
    return ChunkResult.from_values(
        [1000, 1000, 1500, 250_000, 7], seed_offset=40, metrics={"events": 12}
    ).to_dict()


# --------------------------------------------------------------------------- buckets


@given(IN_RANGE)
def test_every_value_falls_in_its_bucket(value: int) -> None:
    low, high = bucket_range(bucket_index(value))
    assert low <= value < high
    assert low <= bucket_midpoint(bucket_index(value)) < high


@given(IN_RANGE, IN_RANGE)
def test_bucket_index_is_monotone(a: int, b: int) -> None:
    a, b = min(a, b), max(a, b)
    assert bucket_index(a) <= bucket_index(b)


@given(st.integers(min_value=0, max_value=BUCKET_COUNT - 2))
def test_buckets_are_contiguous_and_narrow(index: int) -> None:
    low, high = bucket_range(index)
    assert bucket_range(index + 1)[0] == high
    if low < 2048:
        assert high - low == 1
    else:
        assert (high - low) * 1024 <= low  # at most 0.1 % of the lower bound


@given(st.integers(min_value=1, max_value=MAX_VALUE - 1))
def test_negative_values_mirror_positive_ones(value: int) -> None:
    i = bucket_index(value)
    assert bucket_index(-value) == -i - 1
    low, high = bucket_range(i)
    assert bucket_range(-i - 1) == (-high + 1, -low + 1)


def test_bucket_functions_are_integer_only() -> None:
    for value in (0, 99, 100, 12_345, -12_345, 10**15):
        index = bucket_index(value)
        assert type(index) is int
        assert all(type(x) is int for x in bucket_range(index))
        assert type(bucket_midpoint(index)) is int


# --------------------------------------------------------------------------- from_values


def test_from_values_exact_sums() -> None:
    r = ChunkResult.from_values([3, -4, 10**15], seed_offset=7, metrics={"hits": 2})
    assert (r.seed_offset, r.count) == (7, 3)
    assert r.total == 3 - 4 + 10**15
    assert r.total_sq == 9 + 16 + 10**30  # exact, beyond float precision
    assert (r.minimum, r.maximum) == (-4, 10**15)
    assert sum(r.histogram.values()) == 3
    assert r.histogram[bucket_index(10**15)] == 1
    assert r.metrics == {"hits": 2}
    r.check()


def test_from_values_rejects_empty_and_out_of_range() -> None:
    with pytest.raises(ResultInvalid):
        ChunkResult.from_values([], seed_offset=0)
    # The module promises values at or above MAX_VALUE are rejected (they have no bucket).
    for bad in (MAX_VALUE, -MAX_VALUE, MAX_VALUE + 1):
        with pytest.raises(ResultInvalid, match="out of range"):
            ChunkResult.from_values([1, bad], seed_offset=0)
    edge = ChunkResult.from_values([MAX_VALUE - 1, -(MAX_VALUE - 1)], seed_offset=0)
    s = summarize(edge, scale=1)  # the extreme accepted values still have a bucket range
    assert (s.minimum, s.maximum, s.mean) == (float(1 - MAX_VALUE), float(MAX_VALUE - 1), 0.0)


# --------------------------------------------------------------------------- merging


@settings(max_examples=150)
@given(split_values())
def test_merging_chunks_equals_the_whole(case: tuple[list[int], list[list[int]], int]) -> None:
    values, pieces, start = case
    whole = ChunkResult.from_values(values, seed_offset=start)
    merged = merge_in_seed_order(chunk_results(pieces, start))
    assert merged.to_dict() == whole.to_dict()
    assert json.dumps(merged.to_dict()) == json.dumps(whole.to_dict())  # byte-identical
    assert summarize(merged) == summarize(whole)


@settings(max_examples=100)
@given(split_values(), st.randoms(use_true_random=False))
def test_input_order_does_not_matter(
    case: tuple[list[int], list[list[int]], int], rnd: random.Random
) -> None:
    _, pieces, start = case
    results = chunk_results(pieces, start)
    expected = merge_in_seed_order(results).to_dict()
    rnd.shuffle(results)
    assert merge_in_seed_order(results).to_dict() == expected


METRIC_NAMES = st.sampled_from(["events", "ability.fire.damage", "cd.min", "gap.max", "b", "a"])


@settings(max_examples=150)
@given(
    split_values(),
    st.data(),
)
def test_merging_in_one_pass_equals_merging_pairwise(
    case: tuple[list[int], list[list[int]], int], data: st.DataObject
) -> None:
    # Metrics that some chunks lack (a sample kept by the first chunk only, an ability
    # first used late), sums, minima and maxima: the one-pass merge gives what merging
    # the chunks two at a time gives, byte for byte once stored.
    _, pieces, start = case
    results = chunk_results(pieces, start)
    for result in results:
        result.metrics = data.draw(
            st.dictionaries(METRIC_NAMES, st.integers(-(2**40), 2**40), max_size=6)
        )
    pairwise = results[0]
    for result in results[1:]:
        pairwise = pairwise.merge(result)
    merged = merge_in_seed_order(list(reversed(results)))
    assert merged == pairwise
    assert json.dumps(merged.to_dict()) == json.dumps(pairwise.to_dict())
    assert list(merged.metrics) == sorted(merged.metrics)


def test_a_metric_name_is_checked_in_every_result() -> None:
    # A merge shares the names it has checked across a job's results; invalid ones are
    # never among them, so they are refused in every result.
    known: set[str] = set()
    good = valid_dict()
    good["metrics"] = {"events": 1, "x" * 200: 2}
    ChunkResult.from_dict(good, known_names=known)
    assert known == {"events", "x" * 200}
    for bad in ("x" * 201, "", "nul\x00"):
        for _ in range(2):
            with pytest.raises(ResultInvalid, match="not a valid name"):
                ChunkResult.from_dict({**good, "metrics": {bad: 1}}, known_names=known)
    assert known == {"events", "x" * 200}


def test_merge_sums_metrics_and_keeps_the_first_offset() -> None:
    a = ChunkResult.from_values([1, 2], seed_offset=10, metrics={"x": 5, "a": 1})
    b = ChunkResult.from_values([3], seed_offset=12, metrics={"x": 7, "b": 2})
    m = a.merge(b)
    assert (m.seed_offset, m.count, m.total, m.total_sq) == (10, 3, 6, 14)
    assert m.metrics == {"a": 1, "b": 2, "x": 12}
    assert list(m.to_dict()["metrics"]) == ["a", "b", "x"]


@pytest.mark.parametrize("second_offset", [11, 13, 10, 0])  # overlap, gap, same, before
def test_merge_rejects_non_contiguous(second_offset: int) -> None:
    a = ChunkResult.from_values([1, 2], seed_offset=10)
    b = ChunkResult.from_values([3], seed_offset=second_offset)
    with pytest.raises(ResultInvalid, match="not contiguous"):
        a.merge(b)


def test_merge_in_seed_order_must_tile() -> None:
    a = ChunkResult.from_values([1, 2], seed_offset=0)
    b = ChunkResult.from_values([3], seed_offset=2)
    gap = ChunkResult.from_values([4], seed_offset=4)
    with pytest.raises(ResultInvalid):
        merge_in_seed_order([a, b, gap])
    with pytest.raises(ResultInvalid):
        merge_in_seed_order([a, b, b])  # a duplicate completion counted twice
    with pytest.raises(ResultInvalid, match="nothing to merge"):
        merge_in_seed_order([])
    assert merge_in_seed_order(iter([b, a])).count == 3  # any iterable


# --------------------------------------------------------------------------- untrusted input


def test_a_metric_beyond_64_bits_is_refused() -> None:
    r = ChunkResult.from_values([1000, 2000], seed_offset=0, metrics={"damage": 2**63})
    with pytest.raises(ResultInvalid, match="metrics value is out of range"):
        ChunkResult.from_dict(r.to_dict())


@settings(max_examples=150)
@given(
    VALUE_LISTS,
    st.integers(min_value=0, max_value=10**12),
    st.dictionaries(
        # Any name a database can store (no NUL, no lone surrogate: those are refused).
        st.text(
            alphabet=st.characters(exclude_categories=("Cs",), exclude_characters="\x00"),
            min_size=1,
            max_size=20,
        ),
        st.integers(min_value=-(2**63 - 1), max_value=2**63 - 1),
        max_size=5,
    ),
)
def test_dict_round_trip_through_json(
    values: list[int], offset: int, metrics: dict[str, int]
) -> None:
    r = ChunkResult.from_values(values, seed_offset=offset, metrics=metrics)
    back = ChunkResult.from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    assert back.to_dict() == r.to_dict()


@settings(max_examples=100)
@given(VALUE_LISTS, st.data())
def test_any_histogram_tampering_is_rejected(values: list[int], data: st.DataObject) -> None:
    d = ChunkResult.from_values(values, seed_offset=0).to_dict()
    key = data.draw(st.sampled_from(sorted(d["histogram"])))
    delta = data.draw(st.sampled_from([-1, 1, 5]))
    d["histogram"][key] += delta
    with pytest.raises(ResultInvalid):
        ChunkResult.from_dict(d)


def _tamper(**changes: Any) -> dict[str, Any]:
    d = valid_dict()
    for name, value in changes.items():
        if value is _DROP:
            del d[name]
        else:
            d[name] = value
    return d


_DROP = object()
_BASE = valid_dict()
_FIRST_BUCKET = next(iter(_BASE["histogram"]))


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (None, "JSON object"),
        ([1, 2], "JSON object"),
        ("result", "JSON object"),
        (_tamper(count=_DROP), "count must be an integer"),
        (_tamper(count="4"), "count must be an integer"),
        (_tamper(total=float(_BASE["total"])), "total must be an integer"),
        (_tamper(minimum=True), "minimum must be an integer"),
        (_tamper(seed_offset=False), "seed_offset must be an integer"),
        (_tamper(total_sq=None), "total_sq must be an integer"),
        (_tamper(count=0, histogram={}), "count must be positive"),
        (_tamper(seed_offset=-1), "seed_offset non-negative"),
        (_tamper(count=_BASE["count"] + 1), "does not add up"),
        (_tamper(histogram={str(i): 1 for i in range(6)}), "too many"),
        (_tamper(histogram_format=3), "histogram_format 3 is not known"),
        (_tamper(histogram_format=True), "histogram_format True is not known"),
        (_tamper(minimum=_BASE["maximum"] + 1), "greater than"),
        (_tamper(total=_BASE["count"] * _BASE["maximum"] + 1), "outside"),
        (_tamper(total=_BASE["count"] * _BASE["minimum"] - 1), "outside"),
        (_tamper(total_sq=_BASE["total_sq"] // 100), "total_sq"),
        (_tamper(total_sq=-1), "total_sq"),
        (_tamper(histogram=[1, 2]), "must be objects"),
        (_tamper(metrics="x"), "must be objects"),
        (_tamper(histogram={**_BASE["histogram"], "x": 1}), "not an integer"),
        (_tamper(histogram={**_BASE["histogram"], _FIRST_BUCKET: 0}), "positive integer"),
        (_tamper(histogram={**_BASE["histogram"], _FIRST_BUCKET: -1}), "positive integer"),
        (_tamper(histogram={**_BASE["histogram"], _FIRST_BUCKET: True}), "positive integer"),
        (_tamper(histogram={**_BASE["histogram"], _FIRST_BUCKET: 1.0}), "positive integer"),
        (_tamper(metrics={"events": 1.5}), "must be an integer"),
        (_tamper(metrics={"events": True}), "must be an integer"),
        (_tamper(metrics={"": 1}), "not a valid name"),
        (_tamper(metrics={"x" * 201: 1}), "not a valid name"),
        (_tamper(metrics={"damage\x00": 1}), "not a valid name"),
        (_tamper(metrics={"a\ud800b": 1}), "not a valid name"),
        (_tamper(metrics={str(i): 1 for i in range(20_001)}), "too many"),
    ],
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_from_dict_rejects_tampered_results(data: Any, message: str) -> None:
    with pytest.raises(ResultInvalid, match=message):
        ChunkResult.from_dict(data)


def test_from_dict_names_the_bad_field() -> None:
    with pytest.raises(ResultInvalid) as info:
        ChunkResult.from_dict(_tamper(maximum="big"))
    assert info.value.field == "result.maximum"


def test_from_dict_rejects_buckets_outside_min_max() -> None:
    d = ChunkResult.from_values([1000, 1000], seed_offset=0).to_dict()
    far = str(bucket_index(5000))
    d["histogram"] = {str(bucket_index(1000)): 1, far: 1}
    with pytest.raises(ResultInvalid, match="outside"):
        ChunkResult.from_dict(d)


@pytest.mark.parametrize("extreme", [MAX_VALUE, 10**30, -(10**30)])
def test_from_dict_rejects_values_beyond_the_bucket_table(extreme: int) -> None:
    # Such a result used to pass check() and then crash summarize() with an IndexError.
    index = bucket_index(extreme)
    d = {
        "seed_offset": 0,
        "count": 1,
        "total": extreme,
        "total_sq": extreme * extreme,
        "minimum": extreme,
        "maximum": extreme,
        "histogram": {str(index): 1},
        "metrics": {},
    }
    with pytest.raises(ResultInvalid, match="out of range"):
        ChunkResult.from_dict(d)


def test_check_accepts_what_from_values_builds() -> None:
    r = ChunkResult.from_values([5, 5, 5], seed_offset=0)
    r.check()
    assert r.total_sq * r.count == r.total * r.total  # zero variance: Cauchy-Schwarz equality


# --------------------------------------------------------------------------- summary


def test_summarize_matches_statistics_module() -> None:
    rnd = random.Random(20240501)
    values = [round(rnd.gauss(250_000_000, 12_000_000)) for _ in range(5000)]
    s = summarize(ChunkResult.from_values(values, seed_offset=0))
    mean = statistics.fmean(values) / 1000
    std = statistics.stdev(values) / 1000
    assert s.iterations == 5000
    assert s.mean == pytest.approx(mean, rel=1e-12)
    assert s.std == pytest.approx(std, rel=1e-9)
    assert s.error95 == pytest.approx(1.96 * std / math.sqrt(5000), rel=1e-9)
    assert s.error_pct == pytest.approx(s.error95 / s.mean * 100, rel=1e-12)
    assert (s.minimum, s.maximum) == (min(values) / 1000, max(values) / 1000)
    # Sample drawn with sigma 12,000 DPS: the estimate is within 3 % of it (fixed seed).
    assert s.std == pytest.approx(12_000, rel=0.03)
    assert Z95 == 1.96


def test_summarize_single_iteration_and_constant_values() -> None:
    one = summarize(ChunkResult.from_values([123_456], seed_offset=0))
    assert (one.mean, one.std, one.error95) == (123.456, 0.0, 0.0)
    assert one.median == one.q1 == one.q3 == 123.456
    flat = summarize(ChunkResult.from_values([7_000] * 50, seed_offset=0), scale=1)
    assert (flat.std, flat.error_pct) == (0.0, 0.0)
    zero = summarize(ChunkResult.from_values([0, 0], seed_offset=0))
    assert zero.error_pct == 0.0  # no division by a zero mean


def test_summarize_std_uses_exact_sums() -> None:
    # Large offset + tiny spread: a float sum of squares would lose the variance entirely.
    base = 10**15
    values = [base + d for d in (0, 1, 2, 3, 4)]
    s = summarize(ChunkResult.from_values(values, seed_offset=0), scale=1)
    assert s.std == pytest.approx(statistics.stdev(range(5)), rel=1e-12)


@settings(max_examples=150)
@given(st.lists(VALUES, min_size=1, max_size=300))
@example([2049, -22192, -22208])  # p95 interpolates between -22,192 and 2,049
def test_percentiles_within_a_bucket_of_exact(values: list[int]) -> None:
    s = summarize(ChunkResult.from_values(values, seed_offset=0), scale=1)
    ordered = sorted(values)
    for name, q in PERCENTILES:
        exact = linear_percentile(values, q)
        got = s.percentiles[name]
        # Both interpolate between the same two ranks; each rank's bucket is at most
        # 0.1 % of its values wide (1 below 2,048), so the error is at most the wider one's
        # (not 0.1 % of the result, which may be near 0 between a negative and a positive).
        position = q * (len(ordered) - 1)
        lo, hi = ordered[math.floor(position)], ordered[math.ceil(position)]
        assert abs(got - exact) <= max(1.0, abs(lo) / 1000, abs(hi) / 1000), (q, got, exact)
        assert min(values) <= got <= max(values)
        if max(abs(v) for v in values) < 2048:
            assert got == pytest.approx(exact)  # unit-wide buckets are exact


def linear_percentile(values: list[int], q: float) -> float:
    """numpy.percentile's default ("linear") method, restated."""
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    below = math.floor(position)
    above = min(below + 1, len(ordered) - 1)
    return ordered[below] + (ordered[above] - ordered[below]) * (position - below)


def test_summary_to_dict_is_rounded_and_complete() -> None:
    s = Summary(
        iterations=3,
        mean=1.23456,
        std=0.1,
        error95=0.05,
        error_pct=4.04999,
        minimum=1.0,
        maximum=2.0,
        percentiles={
            "p1": 1.0001,
            "p5": 1.05,
            "q1": 1.2,
            "median": 1.5,
            "q3": 1.8,
            "p95": 1.95,
            "p99": 1.99949,
        },
    )
    assert s.to_dict() == {
        "iterations": 3,
        "mean": 1.235,
        "std": 0.1,
        "error95": 0.05,
        "error_pct": 4.05,
        "min": 1.0,
        "max": 2.0,
        "p1": 1.0,
        "p5": 1.05,
        "q1": 1.2,
        "median": 1.5,
        "q3": 1.8,
        "p95": 1.95,
        "p99": 1.999,
    }


# --------------------------------------------------------------------------- histogram bins


@settings(max_examples=100)
@given(
    st.one_of(
        st.lists(st.integers(min_value=0, max_value=5000), min_size=1, max_size=200),
        st.lists(st.integers(min_value=0, max_value=10**12), min_size=1, max_size=200),
        st.lists(st.integers(min_value=99 * 10**6, max_value=101 * 10**6), min_size=1, max_size=99),
    ),
    st.integers(min_value=1, max_value=60),
)
def test_histogram_bins_count_every_value_exactly(values: list[int], max_bins: int) -> None:
    r = ChunkResult.from_values(values, seed_offset=0)
    out = histogram_bins(r, max_bins=max_bins, scale=1)
    assert 1 <= len(out) <= max(max_bins, 1)
    assert sum(b["count"] for b in out) == len(values)
    assert out[0]["low"] <= min(values) < out[0]["high"]
    assert out[-1]["low"] <= max(values) < out[-1]["high"]
    assert len({b["high"] - b["low"] for b in out}) == 1  # equal width
    for left, right in itertools.pairwise(out):
        assert left["high"] == right["low"]
    # Bin edges are bucket edges, so every value is counted in the bin that holds it.
    for b in out:
        assert b["count"] == sum(1 for v in values if b["low"] <= v < b["high"])


def test_histogram_bins_scale_to_dps() -> None:
    r = ChunkResult.from_values([1000, 2500, 3000, 3000], seed_offset=0)
    out = histogram_bins(r, max_bins=2)
    assert [b["count"] for b in out] == [1, 3]
    assert out[0]["low"] <= 1.0 < out[0]["high"]


# --------------------------------------------------------------------------- iterations needed


def _summary(n: int, error_pct: float) -> Summary:
    return Summary(n, 100.0, 1.0, error_pct, error_pct, 0.0, 0.0, {})


@pytest.mark.parametrize(
    ("n", "error", "target", "expected"),
    [
        (1000, 0.2, 0.1, 4000),  # halving the error needs four times the iterations
        (1000, 0.3, 0.1, 9000),
        (1000, 0.15, 0.1, 2250),
        (999, 0.11, 0.1, math.ceil(999 * 1.21)),
        (1000, 0.1, 0.1, 1000),  # already there
        (1000, 0.05, 0.1, 1000),
        (1000, 0.0, 0.1, 1000),
    ],
)
def test_iterations_needed_follows_simc(n: int, error: float, target: float, expected: int) -> None:
    assert iterations_needed(_summary(n, error), target) == expected


@given(
    st.integers(min_value=2, max_value=10**7),
    st.floats(min_value=1e-3, max_value=50),
    st.floats(min_value=1e-3, max_value=50),
)
def test_iterations_needed_projection_properties(n: int, error: float, target: float) -> None:
    needed = iterations_needed(_summary(n, error), target)
    assert needed >= n
    if error > target:
        assert needed == math.ceil(n * (error / target) ** 2)


def test_extreme_metrics_merge_by_min_and_max_in_any_grouping() -> None:
    # ".min" / ".max" metrics are extremes; a chunk without the metric leaves it as is.
    chunks = [
        ChunkResult.from_values([5], seed_offset=0, metrics={"a.min": 7, "a.max": 9, "n": 1}),
        ChunkResult.from_values([6], seed_offset=1, metrics={"n": 2}),
        ChunkResult.from_values([4], seed_offset=2, metrics={"a.min": 3, "a.max": 8, "n": 3}),
    ]
    left = chunks[0].merge(chunks[1]).merge(chunks[2])
    right = chunks[0].merge(chunks[1].merge(chunks[2]))
    assert left.to_dict() == right.to_dict() == merge_in_seed_order(chunks[::-1]).to_dict()
    assert left.metrics == {"a.max": 9, "a.min": 3, "n": 6}
