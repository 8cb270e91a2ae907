"""``target_error``: the scheduler adds rounds until the 95 % error is below the target."""

from __future__ import annotations

from wowlab_core.localpool import run_local_simulation
from wowlab_core.plugins import Hooks

CONFIG = {"base_dps": 1000, "spread": 300}


def test_rounds_are_added_until_the_error_is_below_the_target(wowlab_hooks: Hooks) -> None:
    run = run_local_simulation(
        CONFIG,
        hooks=wowlab_hooks,
        iterations=100,
        seed=3,
        nodes=2,
        engine_name="toy",
        target_error=1.0,
    )
    assert run.status == "completed" and run.report is not None
    dps = run.report["dps"]
    assert dps["error_pct"] < 1.0
    # SimC's projection from the first round: n * (err / target)^2, about 1,150 here.
    assert 800 < run.report["iterations"] < 2500
    assert run.report["target_error"] == 1.0
    again = run_local_simulation(
        CONFIG,
        hooks=wowlab_hooks,
        iterations=100,
        seed=3,
        nodes=1,
        engine_name="toy",
        target_error=1.0,
    )
    assert again.report == run.report  # the rounds are deterministic too


def test_target_error_stops_at_max_iterations(wowlab_hooks: Hooks) -> None:
    from wowlab_core.jobs import JobLimits

    run = run_local_simulation(
        CONFIG,
        hooks=wowlab_hooks,
        iterations=100,
        seed=3,
        nodes=1,
        engine_name="toy",
        target_error=0.01,
        limits=JobLimits(max_iterations=500),
    )
    assert run.status == "completed" and run.report is not None
    assert run.report["iterations"] == 500 and run.report["dps"]["error_pct"] > 0.01
