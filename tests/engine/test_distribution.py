"""A real job's DPS distribution: percentiles within 0.1 % of the exact ones computed from
its per-iteration values, display bins without holes, the same report however chunked."""

from __future__ import annotations

import json

import numpy as np
import pytest

from wowlab_core.report import REPORT_VERSION, build_report, dumps_report
from wowlab_core.results import PERCENTILES, VALUE_SCALE, merge_in_seed_order
from wowlab_engine import kernels
from wowlab_engine.engine import NumbaEngine
from wowlab_engine.example_configs import EXAMPLES_DIR
from wowlab_engine.runner import run_values

SEED = 20261129
ITERATIONS = 600


@pytest.mark.parametrize("example", ["fire_mage", "rogue"])
def test_percentiles_are_within_a_thousandth_of_the_exact_ones(
    numba_engine: NumbaEngine, example: str
) -> None:
    config = json.loads((EXAMPLES_DIR / f"{example}.json").read_text())
    prepared = numba_engine.prepare(config)
    chunks = [
        numba_engine.run_chunk(prepared, seed=SEED, seed_offset=offset, iterations=200)
        for offset in (400, 0, 200)
    ]
    merged = merge_in_seed_order(chunks)
    report = build_report(
        merged=merged,
        seed=SEED,
        config_hash="x",
        engine_name="numba",
        engine=numba_engine,
        prepared=prepared,
    )
    assert report["report_version"] == REPORT_VERSION == 2
    # The same iterations, one value each (the engine's per-iteration path).
    values, _ = run_values(
        prepared, kernels.compiled_loop(), seed=SEED, first=0, iterations=ITERATIONS
    )
    dps = np.array(values, dtype=np.float64) / VALUE_SCALE
    assert report["dps"]["mean"] == round(float(np.mean(dps)), 3)
    for name, q in PERCENTILES:
        exact = float(np.percentile(dps, 100 * q))
        assert report["dps"][name] == pytest.approx(exact, rel=1e-3), name
    assert report["dps"]["q1"] < report["dps"]["median"] < report["dps"]["q3"]
    bins = report["histogram"]
    assert all(b["count"] > 0 for b in bins)
    assert sum(b["count"] for b in bins) == ITERATIONS
    assert len(bins) >= 8
    assert bins[0]["low"] <= dps.min() and dps.max() < bins[-1]["high"]
    # One chunk or three, in any order: the same bytes.
    whole = numba_engine.run_chunk(prepared, seed=SEED, seed_offset=0, iterations=ITERATIONS)
    again = build_report(
        merged=whole,
        seed=SEED,
        config_hash="x",
        engine_name="numba",
        engine=numba_engine,
        prepared=prepared,
    )
    assert dumps_report(again) == dumps_report(report)
