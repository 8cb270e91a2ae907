"""What the CLI prints: readable at 80 columns and piped, with every number of the JSON report;
``--format table|json|markdown|csv``; the target-error warning; example configs."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from wowlab_core.cli.output import Table, print_table

SIM = ["sim", "fire_mage", "-n", "300", "--seed", "42", "--nodes", "2"]


def wowlab(
    *args: str, columns: int = 80, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``wowlab ARGS`` with its output piped (as in ``wowlab sim ... > report.txt``)."""
    return subprocess.run(
        [sys.executable, "-m", "wowlab_core", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": str(columns), **(env or {})},
    )


def numbers_in(value: Any) -> list[int | float]:
    """Every number in a JSON value."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, dict):
        return [n for v in value.values() for n in numbers_in(v)]
    if isinstance(value, list):
        return [n for v in value for n in numbers_in(v)]
    return []


def words(text: str) -> set[str]:
    """The numbers printed in ``text``, without thousands separators."""
    return set(re.findall(r"-?\d+(?:\.\d+)?", re.sub(r"(?<=\d),(?=\d{3})", "", text)))


@pytest.fixture(scope="module")
def json_report() -> dict[str, Any]:
    done = wowlab(*SIM, "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    report.pop("timing")  # run-dependent: not the same in the text run
    return report


@pytest.mark.parametrize("columns", [80, 60, 200])
def test_text_report_holds_every_number_of_the_json_report(
    json_report: dict[str, Any], columns: int
) -> None:
    done = wowlab(*SIM, columns=columns)
    assert done.returncode == 0, done.stderr
    printed = words(done.stdout)
    # Summarised on purpose (and said so in the text): timelines are sparklines with their
    # range, the sample action sequence shows its first MAX_ROWS casts.
    from wowlab_core.cli.render import MAX_ROWS

    expected = {k: v for k, v in json_report.items() if k != "timelines"}
    if "sample_sequence" in expected:
        expected["sample_sequence"] = expected["sample_sequence"][:MAX_ROWS]
    assert "timelines" not in json_report or "every point is in --json" in done.stdout
    missing = sorted({repr(n) for n in numbers_in(expected) if repr(n) not in printed})
    assert missing == [], f"not printed at {columns} columns: {missing[:20]}"
    assert "…" not in done.stdout  # nothing cut with an ellipsis
    widest = max(len(line) for line in done.stdout.splitlines())
    assert widest <= columns, f"a line is {widest} wide at {columns} columns"


def test_json_alias_and_formats(json_report: dict[str, Any]) -> None:
    as_json = wowlab(*SIM, "--format", "json")
    alias = wowlab(*SIM, "--json")
    for done in (as_json, alias):
        report = json.loads(done.stdout)
        report.pop("timing")
        assert report == json_report
    markdown = wowlab(*SIM, "--format", "markdown").stdout
    assert "### Abilities" in markdown and "|---|" in markdown.replace("---:", "---")
    assert re.search(r"^\| Fireball \| [\d,.]+ \|", markdown, re.M), markdown  # its label
    assert "### Cooldowns and utility" in markdown and "| Time Warp |" in markdown
    text = wowlab(*SIM, "--format", "csv").stdout
    sections = {block.splitlines()[0]: block for block in text.strip().split("\n\n")}
    abilities = list(csv.DictReader(io.StringIO(sections["# Abilities"].split("\n", 1)[1])))
    fireball = next(row for row in abilities if row["ability"] == "fireball")  # CSV: ids
    assert fireball["label"] == "Fireball"
    expected = next(a for a in json_report["abilities"] if a["ability"] == "fireball")
    assert float(fireball["damage"]) == expected["damage"]  # plain numbers, no separators
    clash = wowlab(*SIM, "--json", "--format", "csv")
    assert clash.returncode == 2 and "do not go together" in clash.stderr


def test_target_error_not_reached_warns_and_says_so_in_json() -> None:
    args = ["sim", "fire_mage", "-n", "100", "--seed", "1", "--nodes", "2"]
    strict = [*args, "--target-error", "0.001", "--max-iterations", "200"]
    done = wowlab(*strict, "--json")
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["target_error_reached"] is False and report["iterations"] == 200
    assert "warning: the target error 0.001 % was not reached" in done.stderr
    reached = json.loads(wowlab(*args, "--target-error", "50", "--json").stdout)
    assert reached["target_error_reached"] is True
    plain = json.loads(wowlab(*args, "--json").stdout)
    assert "target_error_reached" not in plain  # no target, no verdict


def test_help_shows_percent_signs_once() -> None:
    for command in (["sim", "--help"], ["submit", "--help"]):
        done = wowlab(*command, columns=200)
        assert done.returncode == 0
        assert "95%%" not in done.stdout and "95% error" in done.stdout


def test_engine_examples_show_prints_a_config_to_start_from(tmp_path: Path) -> None:
    listed = json.loads(wowlab("engine", "examples", "--format", "json").stdout)
    assert {"fire_mage", "rogue"} <= {e["name"] for e in listed}
    shown = wowlab("engine", "examples", "--show", "rogue")
    assert shown.returncode == 0
    config = tmp_path / "my_rogue.json"
    config.write_text(shown.stdout)
    assert json.loads(shown.stdout)["name"] == "rogue"
    ran = wowlab("sim", str(config), "-n", "50", "--json")
    assert ran.returncode == 0 and json.loads(ran.stdout)["iterations"] == 50
    unknown = wowlab("engine", "examples", "--show", "paladin")
    assert unknown.returncode == 2
    assert unknown.stderr.startswith("error: no example 'paladin' (examples: ")


@pytest.mark.parametrize("width", [40, 60, 80, 120])
def test_tables_choose_a_layout_that_fits(width: int) -> None:
    rows = [
        {"ability": f"a_rather_long_ability_name_{i}", "damage": 1234567.891 * i, "hits": 10**i}
        for i in range(1, 6)
    ]
    table = Table.from_dicts("Abilities", rows)
    console = Console(width=width, file=io.StringIO(), color_system=None)
    print_table(console, table)
    out = console.file.getvalue()  # type: ignore[attr-defined]
    assert max(len(line) for line in out.splitlines()) <= width
    for row in rows:
        assert f"{row['damage']:,}" in out and f"{row['hits']:,}" in out
