"""End to end: the plugin registers the engines; examples run; both builds agree."""

from __future__ import annotations

import json

import pytest

from wowlab_core.engines import Engine
from wowlab_engine import plugin
from wowlab_engine.engine import NumbaEngine, ReferenceEngine


def test_plugin_registers_numba_and_reference() -> None:
    engines: list[Engine] = []
    plugin.wowlab_register_engines(engines.append)
    assert [e.name for e in engines] == ["numba", "reference"]
    assert all(isinstance(e, Engine) for e in engines)


@pytest.mark.parametrize("name", sorted(NumbaEngine().examples()))
def test_examples_run_identically_compiled_and_pure(
    name: str, numba_engine: NumbaEngine, reference_engine: ReferenceEngine
) -> None:
    config = json.loads(numba_engine.examples()[name].read_text())
    prepared = numba_engine.prepare(config)
    compiled = numba_engine.run_chunk(prepared, seed=11, seed_offset=5, iterations=6)
    pure = reference_engine.run_chunk(prepared, seed=11, seed_offset=5, iterations=6)
    compiled.check()
    assert compiled.to_dict() == pure.to_dict()
    assert compiled.metrics["events"] > 0
    sections = numba_engine.report_sections(prepared, compiled)
    assert sections["abilities"] and sections["fight"]["iterations_truncated"] == 0
    json.dumps(sections)
