"""Determinism: chunking never changes a result; compiled and pure Python agree exactly."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from wowlab_core.results import merge_in_seed_order
from wowlab_engine.engine import NumbaEngine, ReferenceEngine

ENGINE = NumbaEngine()
EXAMPLES = ENGINE.examples()


@pytest.mark.parametrize("name", sorted(EXAMPLES))
def test_one_chunk_equals_seven_uneven_chunks(name: str) -> None:
    prepared = ENGINE.prepare(json.loads(EXAMPLES[name].read_text()))
    whole = ENGINE.run_chunk(prepared, seed=2024, seed_offset=0, iterations=1000)
    sizes = [1, 300, 7, 255, 257, 100, 80]
    assert sum(sizes) == 1000
    parts, offset = [], 0
    for size in sizes:
        parts.append(ENGINE.run_chunk(prepared, seed=2024, seed_offset=offset, iterations=size))
        offset += size
    parts.reverse()  # arrival order does not matter either
    assert merge_in_seed_order(parts).to_dict() == whole.to_dict()
    merged = merge_in_seed_order(parts)
    assert ENGINE.report_sections(prepared, merged) == ENGINE.report_sections(prepared, whole)


def test_a_different_seed_gives_a_different_result() -> None:
    prepared = ENGINE.prepare(json.loads(EXAMPLES["fire_mage"].read_text()))
    a = ENGINE.run_chunk(prepared, seed=1, seed_offset=0, iterations=20)
    b = ENGINE.run_chunk(prepared, seed=2, seed_offset=0, iterations=20)
    assert a.total != b.total


def test_huge_seeds_and_offsets_are_fine() -> None:
    prepared = ENGINE.prepare(json.loads(EXAMPLES["fire_mage"].read_text()))
    big = ENGINE.run_chunk(prepared, seed=2**64 + 5, seed_offset=2**40, iterations=2)
    same = ENGINE.run_chunk(prepared, seed=5, seed_offset=2**40, iterations=2)
    negative = ENGINE.run_chunk(prepared, seed=-1, seed_offset=0, iterations=2)
    assert big.to_dict() == same.to_dict()
    negative.check()


_SUBPROCESS = """
import json, sys
from wowlab_engine.engine import NumbaEngine
engine = NumbaEngine()
out = {}
for name, path in sorted(engine.examples().items()):
    prepared = engine.prepare(json.loads(path.read_text()))
    out[name] = engine.run_chunk(prepared, seed=77, seed_offset=3, iterations=4).to_dict()
print(json.dumps(out))
"""


def test_numba_disable_jit_gives_identical_results() -> None:
    env = {**os.environ, "NUMBA_DISABLE_JIT": "1"}
    proc = subprocess.run(
        [sys.executable, "-c", _SUBPROCESS],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=Path(__file__).parent,
        check=True,
    )
    pure = json.loads(proc.stdout)
    for name, path in sorted(EXAMPLES.items()):
        prepared = ENGINE.prepare(json.loads(path.read_text()))
        compiled = ENGINE.run_chunk(prepared, seed=77, seed_offset=3, iterations=4)
        assert json.loads(json.dumps(compiled.to_dict())) == pure[name], name


def test_reference_engine_matches_in_process() -> None:
    reference = ReferenceEngine()
    for path in EXAMPLES.values():
        prepared = ENGINE.prepare(json.loads(path.read_text()))
        compiled = ENGINE.run_chunk(prepared, seed=9, seed_offset=100, iterations=3)
        pure = reference.run_chunk(prepared, seed=9, seed_offset=100, iterations=3)
        assert compiled.to_dict() == pure.to_dict()


def test_chunks_run_concurrently_in_threads_give_the_same_results() -> None:
    from concurrent.futures import ThreadPoolExecutor

    prepared = ENGINE.prepare(json.loads(EXAMPLES["rogue"].read_text()))
    serial = [
        ENGINE.run_chunk(prepared, seed=3, seed_offset=i * 50, iterations=50) for i in range(4)
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:
        threaded = list(
            pool.map(
                lambda i: ENGINE.run_chunk(prepared, seed=3, seed_offset=i * 50, iterations=50),
                range(4),
            )
        )
    assert [r.to_dict() for r in threaded] == [r.to_dict() for r in serial]
