"""Generated valid configs: compiled and pure Python agree exactly, results are consistent."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings

from wowlab_core.results import merge_in_seed_order
from wowlab_engine.engine import NumbaEngine, ReferenceEngine

from .strategies import valid_configs

NUMBA = NumbaEngine()
REFERENCE = ReferenceEngine()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(valid_configs())
def test_compiled_and_pure_python_agree_on_generated_configs(config: dict[str, Any]) -> None:
    prepared = NUMBA.prepare(config)
    compiled = NUMBA.run_chunk(prepared, seed=5, seed_offset=10, iterations=3)
    pure = REFERENCE.run_chunk(prepared, seed=5, seed_offset=10, iterations=3)
    assert compiled.to_dict() == pure.to_dict()
    compiled.check()
    assert compiled.metrics["iterations_truncated"] == 0
    # Chunked the other way round, the same iterations give the same result.
    parts = [NUMBA.run_chunk(prepared, seed=5, seed_offset=10 + i, iterations=1) for i in range(3)]
    assert merge_in_seed_order(parts).to_dict() == compiled.to_dict()
    NUMBA.report_sections(prepared, compiled)
