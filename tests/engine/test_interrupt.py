"""Stopping a running chunk and following its progress, with results unchanged."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from wowlab_core.engines import is_local_only, run_engine_chunk, supports_interrupt
from wowlab_core.errors import ChunkStopped
from wowlab_engine.engine import NumbaEngine, ReferenceEngine

ENGINE = NumbaEngine()
EXAMPLES = ENGINE.examples()
SLOW = json.loads((Path(__file__).parent / "slow_aoe.json").read_text())


def _prepared(name: str) -> Any:
    return ENGINE.prepare(json.loads(EXAMPLES[name].read_text()))


@pytest.mark.parametrize(
    ("name", "seed_offset", "iterations"),
    [("fire_mage", 0, 3000), ("aoe_mage", 12_345, 777), ("rogue", 5, 1), ("affliction", 9, 300)],
)
def test_sub_batches_give_the_same_result_byte_for_byte(
    name: str, seed_offset: int, iterations: int
) -> None:
    prepared = _prepared(name)
    whole = ENGINE.run_chunk(prepared, seed=77, seed_offset=seed_offset, iterations=iterations)
    done: list[int] = []
    batched = ENGINE.run_chunk(
        prepared,
        seed=77,
        seed_offset=seed_offset,
        iterations=iterations,
        stop=threading.Event(),
        progress=done.append,
    )
    assert batched == whole
    assert json.dumps(batched.to_dict()) == json.dumps(whole.to_dict())
    assert done[-1] == iterations and done == sorted(set(done))
    if iterations >= 3000:
        assert len(done) > 3  # it really ran in sub-batches


def test_reference_engine_sub_batches_match_the_compiled_engine() -> None:
    reference = ReferenceEngine()
    config = json.loads(EXAMPLES["fire_mage"].read_text())
    compiled = ENGINE.run_chunk(ENGINE.prepare(config), seed=3, seed_offset=40, iterations=12)
    pure = reference.run_chunk(
        reference.prepare(config),
        seed=3,
        seed_offset=40,
        iterations=12,
        stop=threading.Event(),
        progress=lambda done: None,
    )
    assert pure.to_dict() == compiled.to_dict()


def test_stop_flag_ends_an_expensive_chunk_within_a_second() -> None:
    prepared = ENGINE.prepare(SLOW)
    ENGINE.run_chunk(prepared, seed=1, seed_offset=0, iterations=1)  # warm
    stop = threading.Event()
    done: list[int] = []
    set_at: list[float] = []

    def stop_soon() -> None:
        time.sleep(0.8)
        set_at.append(time.monotonic())
        stop.set()

    threading.Thread(target=stop_soon, daemon=True).start()
    # 1,000 iterations of ~0.14 s each: minutes, unless the flag is honoured.
    with pytest.raises(ChunkStopped) as stopped:
        ENGINE.run_chunk(
            prepared, seed=9, seed_offset=100, iterations=1000, stop=stop, progress=done.append
        )
    latency = time.monotonic() - set_at[0]
    assert latency < 1.0, f"took {latency:.2f} s to stop"
    exc = stopped.value
    assert 1 <= exc.iterations_done < 1000 and exc.iterations_done == done[-1]
    # What was done before the stop is exact: the same as running just those iterations.
    alone = ENGINE.run_chunk(prepared, seed=9, seed_offset=100, iterations=exc.iterations_done)
    assert exc.partial is not None and exc.partial.to_dict() == alone.to_dict()


def test_a_set_flag_stops_before_the_first_iteration() -> None:
    stop = threading.Event()
    stop.set()
    with pytest.raises(ChunkStopped) as stopped:
        ENGINE.run_chunk(_prepared("fire_mage"), seed=1, seed_offset=0, iterations=10, stop=stop)
    assert stopped.value.iterations_done == 0 and stopped.value.partial is None


def test_sub_batches_stay_short_on_an_expensive_config() -> None:
    prepared = ENGINE.prepare(SLOW)
    marks: list[float] = []
    started = time.monotonic()
    ENGINE.run_chunk(
        prepared,
        seed=2,
        seed_offset=0,
        iterations=12,
        progress=lambda done: marks.append(time.monotonic()),
    )
    gaps = [b - a for a, b in zip([started, *marks], marks, strict=False)]
    # One iteration takes ~0.14 s here: every gap between two checks is a few iterations.
    assert max(gaps) < 0.6, gaps


def test_the_engines_say_what_they_support() -> None:
    assert supports_interrupt(ENGINE) and supports_interrupt(ReferenceEngine())
    assert not is_local_only(ENGINE) and is_local_only(ReferenceEngine())


class LegacyEngine(NumbaEngine):
    """An engine written before stop/progress existed."""

    def run_chunk(  # type: ignore[override]
        self, prepared: Any, *, seed: int, seed_offset: int, iterations: int
    ) -> Any:
        return super().run_chunk(
            prepared, seed=seed, seed_offset=seed_offset, iterations=iterations
        )


def test_an_engine_without_stop_support_still_runs() -> None:
    legacy = LegacyEngine()
    assert not supports_interrupt(legacy)
    prepared = _prepared("fire_mage")
    result = run_engine_chunk(
        legacy,
        prepared,
        seed=5,
        seed_offset=0,
        iterations=50,
        stop=threading.Event(),
        progress=lambda done: None,
    )
    assert result == ENGINE.run_chunk(prepared, seed=5, seed_offset=0, iterations=50)
