"""The HDR-style DPS histogram (``wowlab_core.histogram``): the pinned bucket table,
display bins without holes, and results stored in the format before it (format 1)."""

from __future__ import annotations

import copy
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wowlab_core.errors import ResultInvalid
from wowlab_core.histogram import (
    BUCKET_COUNT,
    Distribution,
    bucket_index,
    bucket_range,
    legacy_bucket_index,
    legacy_bucket_range,
)
from wowlab_core.results import (
    MAX_VALUE,
    ChunkResult,
    histogram_bins,
    merge_in_seed_order,
    summarize,
)

FIXTURES = Path(__file__).parent.parent / "fixtures"


def test_bucket_table_is_pinned() -> None:
    # Stored results from every machine use these indices: changing them breaks merging.
    pinned = {
        0: 0,
        2047: 2047,
        2048: 2048,
        2049: 2048,
        4095: 3071,
        4096: 3072,
        100_000_000: 17_909,  # 100k DPS in milli-DPS: a bucket 65.536 DPS wide
        MAX_VALUE - 1: BUCKET_COUNT - 1,
    }
    assert {v: bucket_index(v) for v in pinned} == pinned
    assert bucket_range(17_909) == (99_942_400, 100_007_936)
    assert BUCKET_COUNT == 55_296
    sample = ",".join(str(bucket_index(3**k)) for k in range(40))
    digest = hashlib.sha256(sample.encode()).hexdigest()
    assert digest == "fcc38cc4ac984c3918abd8ca3a053678fbc6988abd1a428e59ff8a306d60ad36"


@given(st.integers(min_value=2048, max_value=MAX_VALUE - 1))
def test_buckets_are_at_most_a_thousandth_wide(value: int) -> None:
    low, high = bucket_range(bucket_index(value))
    assert low <= value < high
    assert (high - low) * 1024 <= low  # 3 significant digits: <= 0.098 % of the value
    assert high - low & (high - low - 1) == 0  # a power of two (display edges align)


# --------------------------------------------------------------------------- display bins


def normal_values(seed: int, n: int, mean: float, std: float) -> list[int]:
    rnd = random.Random(seed)
    return [round(rnd.gauss(mean, std) * 1000) for _ in range(n)]  # milli-DPS


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize(
    ("mean", "std", "n", "at_least"),
    [
        (100_000, 10, 1_000, 1),  # the whole spread is about one bucket (65 DPS) wide
        (100_000, 10, 50_000, 1),
        (100_000, 3_000, 300, 5),
        (100_000, 3_000, 20_000, 10),
        (100_000, 15_000, 1_000, 8),
        (100_000, 15_000, 100_000, 10),
        (2_500, 250, 5_000, 8),
    ],
)
def test_no_display_bin_is_empty_for_normal_data(
    seed: int, mean: float, std: float, n: int, at_least: int
) -> None:
    values = normal_values(seed, n, mean, std)
    result = ChunkResult.from_values(values, seed_offset=0)
    bins = histogram_bins(result, scale=1)
    counts = [b["count"] for b in bins]
    assert all(counts), counts
    assert sum(counts) == n
    assert at_least <= len(bins) <= 60
    # Over the data's real range: the first bin holds the minimum, the last the maximum.
    assert bins[0]["low"] <= min(values) < bins[0]["high"]
    assert bins[-1]["low"] <= max(values) < bins[-1]["high"]
    # Every edge is a bucket edge, so the counts are exact.
    for b in bins:
        assert b["count"] == sum(1 for v in values if b["low"] <= v < b["high"])


def test_the_old_histogram_holes_are_gone() -> None:
    # 50 bins over 1 %-wide buckets left every other bin empty for this spread.
    values = normal_values(7, 5_000, 20_000, 400)
    bins = histogram_bins(ChunkResult.from_values(values, seed_offset=0), scale=1)
    assert len(bins) >= 15
    assert all(b["count"] for b in bins)


def test_a_gap_in_the_data_stays_visible() -> None:
    # Two fights far apart: coarsening stops at a few bins, the empty middle is real.
    values = [10_000_000 + i for i in range(500)] + [20_000_000 + i for i in range(500)]
    bins = Distribution(
        ChunkResult.from_values(values, seed_offset=0).histogram, min(values), max(values)
    ).display_bins()
    assert len(bins) >= 5
    assert bins[0][2] == 500 and bins[-1][2] == 500
    assert sum(c for _, _, c in bins[1:-1]) == 0


# --------------------------------------------------------------------------- format 1


def v1_chunks() -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = json.loads((FIXTURES / "v1_chunk_results.json").read_text())
    return data


def test_format_1_results_are_converted_on_read() -> None:
    # Two chunks stored by wowlab before format 2 (tests/fixtures, made by that code).
    stored = v1_chunks()
    assert all("histogram_format" not in d for d in stored)
    results = [ChunkResult.from_dict(d) for d in stored]
    for d, r in zip(stored, results, strict=True):
        assert sum(r.histogram.values()) == d["count"] == r.count
        # Each old bucket's count went to the new bucket of its midpoint.
        for key, count in d["histogram"].items():
            low, high = legacy_bucket_range(int(key))
            mid = min(max((low + high - 1) // 2, d["minimum"]), d["maximum"])
            assert r.histogram[bucket_index(mid)] >= count
        again = ChunkResult.from_dict(json.loads(json.dumps(r.to_dict())))
        assert again == r  # the normal form is format 2 and reads back unchanged
        assert r.to_dict()["histogram_format"] == 2
    merged = merge_in_seed_order(results)
    s = summarize(merged)
    assert s.iterations == 200
    assert 17_000 < s.minimum <= s.percentiles["p1"] <= s.median <= s.percentiles["p99"] < 24_200
    # As precise as the old buckets: the median is the old report's within 1 %.
    old_report = json.loads((FIXTURES / "v1_report.json").read_text())
    assert s.median == pytest.approx(old_report["dps"]["median"], rel=0.01)
    assert summarize(merged).to_dict()["mean"] == old_report["dps"]["mean"]  # exact sums kept


def test_a_format_1_and_a_format_2_chunk_merge() -> None:
    first, second = v1_chunks()
    fresh = ChunkResult.from_values(
        [second["minimum"]] * (second["count"] - 1) + [second["maximum"]],
        seed_offset=second["seed_offset"],
    )
    merged = ChunkResult.from_dict(first).merge(fresh)
    assert merged.count == 200
    merged.check()


def test_format_1_checks_its_own_buckets() -> None:
    bad = copy.deepcopy(v1_chunks()[0])
    outside = legacy_bucket_index(bad["maximum"] * 2)
    key = next(iter(bad["histogram"]))
    bad["histogram"][key] -= 1
    if not bad["histogram"][key]:
        del bad["histogram"][key]
    bad["histogram"][str(outside)] = 1
    with pytest.raises(ResultInvalid, match="outside"):
        ChunkResult.from_dict(bad)
