"""The pure-Python reference engine runs locally (``wowlab sim --engine reference``) with the
same report as the compiled engine, though the pool refuses it."""

from __future__ import annotations

import json
import subprocess
import sys


def sim(*args: str) -> dict[str, object]:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "wowlab_core",
            "sim",
            "fire_mage",
            "-n",
            "30",
            "--seed",
            "4",
            "--json",
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    report: dict[str, object] = json.loads(done.stdout)
    report.pop("timing", None)
    return report


def test_wowlab_sim_runs_the_reference_engine_locally() -> None:
    reference = sim("--engine", "reference")
    compiled = sim("--engine", "numba")
    assert reference.pop("engine") != compiled.pop("engine")  # their names differ
    assert reference == compiled
