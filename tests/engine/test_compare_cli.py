"""``wowlab sim --scale-factors`` and ``--profileset`` as a user runs them (a subprocess, the
embedded pool): reports identical however the jobs are chunked, and one-line errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest


def wowlab(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wowlab_core", *args],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=cwd,
    )


def report(*args: str, cwd: Path | None = None) -> dict[str, Any]:
    done = wowlab("sim", *args, "--json", "--nodes", "2", cwd=cwd)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)
    data.pop("timing")
    return data


def test_scale_factors_report_is_identical_however_chunked() -> None:
    args = ("rogue", "-n", "120", "--seed", "4", "--scale-factors", "crit,haste,primary")
    one = report(*args, "--chunks", "1")
    many = report(*args, "--chunks", "5")
    assert json.dumps(one, sort_keys=True) == json.dumps(many, sort_keys=True)
    rows = {row["stat"]: row for row in one["scale_factors"]["stats"]}
    assert set(rows) == {"crit", "haste", "primary"}
    assert rows["primary"]["normalized"] == 1.0
    assert all(row["per_point"] > 0 and row["error95"] > 0 for row in rows.values())
    assert one["iterations"] == 120 and one["abilities"]  # the base's own report


def test_profile_sets_rank_with_culling_identically_however_chunked(tmp_path: Path) -> None:
    (tmp_path / "vers.json").write_text(json.dumps({"actor": {"versatility_rating": 2000}}))
    sweep = {"sweep": {"path": "actor.crit_rating", "values": [0, 1000, 2000, 3000]}}
    (tmp_path / "sweep.json").write_text(json.dumps(sweep))
    args = (
        "rogue",
        "--seed",
        "8",
        "--profileset",
        "vers=vers.json",
        "--profilesets",
        "sweep.json",
        "--target-error",
        "0.5",
    )
    one = report(*args, "--chunks", "1", cwd=tmp_path)
    many = report(*args, "--chunks", "3", cwd=tmp_path)
    assert json.dumps(one, sort_keys=True) == json.dumps(many, sort_keys=True)
    section = one["profilesets"]
    names = {row["name"] for row in section["ranking"]}
    assert names == {
        "base",
        "vers",
        "crit_rating_0",
        "crit_rating_1",
        "crit_rating_2",
        "crit_rating_3",
    }
    assert section["winner"] == section["ranking"][0]["name"]
    assert section["stages"][0] == {
        "stage": 1,
        "variants": 6,
        "iterations": 100,
        "target_error": 1.0,
    }
    assert "compare_sums" not in one


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scale-factors", "crit,luck"], "compare.variants[1].stats.luck"),
        (["--scale-factors", "crit", "--delta", "0"], "--delta must be positive"),
        (["--profileset", "nothing"], "--profileset 'nothing': give NAME=PATCH.json"),
        (["--profileset", "Bad=p.json"], "profile set name 'Bad' must be a lower-case"),
        (["--scale-factors", "crit", "--profileset", "a=p.json"], "not both"),
    ],
)
def test_compare_errors_are_one_line(tmp_path: Path, args: list[str], message: str) -> None:
    (tmp_path / "p.json").write_text(json.dumps({"actor": {"crit_rating": 10}}))
    done = wowlab("sim", "fire_mage", "-n", "10", *args, cwd=tmp_path)
    assert done.returncode != 0
    assert message in done.stderr, done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr
