"""The standalone HTML report (``wowlab_core.report_html``) and the names people see
(``wowlab_core.report_view``): one inert file, every name escaped, old reports too."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest

from wowlab_core.cli.output import Table
from wowlab_core.cli.render import report_tables
from wowlab_core.report_html import report_html
from wowlab_core.report_view import humanize, row_label, split_abilities

FIXTURES = Path(__file__).parent.parent / "fixtures"


def v1_report() -> dict[str, Any]:
    report: dict[str, Any] = json.loads((FIXTURES / "v1_report.json").read_text())
    return report


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("fire_blast", "Fire Blast"),
        ("arcane-power", "Arcane Power"),
        ("DoT_tick", "DoT Tick"),
        ("soul_shard.gain", "Soul Shard Gain"),
        ("x", "X"),
        ("slice_and_dice", "Slice and Dice"),
        ("mark_of_the_wild", "Mark of the Wild"),
        ("the_hunt", "The Hunt"),
        ("__", "__"),
    ],
)
def test_names_are_humanised(name: str, shown: str) -> None:
    assert humanize(name) == shown


def test_a_label_wins_and_cooldowns_stand_apart() -> None:
    assert row_label({"ability": "combustion", "label": "Combustion!"}, "ability") == "Combustion!"
    assert row_label({"ability": "time_warp"}, "ability") == "Time Warp"
    # Only rows that report damage and casts can be told apart; others stay abilities.
    assert split_abilities([{"name": "toy", "executes": 3}]) == (
        [{"name": "toy", "executes": 3}],
        [],
    )
    idle = {"ability": "unused", "damage": 0.0, "dps": 0.0, "executes": 0.0}
    assert split_abilities([idle]) == ([idle], [])
    damage, utility = split_abilities(v1_report()["abilities"])
    assert [r["ability"] for r in utility] == ["combustion", "time_warp"]
    assert "ignite" in [r["ability"] for r in damage]  # damage without casts is damage


class Elements(HTMLParser):
    """Every tag and attribute of a document, as a browser's tokenizer sees them."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: set[str] = set()
        self.attributes: list[tuple[str, str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.add(tag)
        self.attributes += [(tag, name, value or "") for name, value in attrs]


def inert(html: str) -> None:
    """Nothing in the file loads or runs anything."""
    parsed = Elements()
    parsed.feed(html)
    assert not parsed.tags & {"script", "link", "iframe", "object", "embed", "img", "base"}
    for tag, name, value in parsed.attributes:
        assert name not in {"src", "href", "srcset", "action", "style"}, (tag, name)
        assert not name.startswith("on"), (tag, name)
        if name == "xmlns":
            assert value == "http://www.w3.org/2000/svg"  # a name, not a fetch
    assert "url(" not in html and "@import" not in html


def test_a_version_1_report_renders_as_one_inert_file() -> None:
    report = v1_report()
    html = report_html(report)
    inert(html)
    assert html.startswith("<!doctype html>")
    assert "<h1>fire_mage</h1>" in html  # no config name in v1: the fight section's
    assert f'<strong id="dps-mean">{report["dps"]["mean"]:,}</strong>' in html
    for key in ("q1", "median", "q3", "min", "max", "std"):
        assert f'id="dps-{key}">{report["dps"][key]:,}<' in html
    assert 'id="dps-p1"' not in html  # a v1 report has no p1: nothing is made up
    assert "<h2>Cooldowns and utility</h2>" in html
    assert "<td>Time Warp</td>" in html and "<td>Fire Blast</td>" in html
    assert ">fire_blast<" not in html
    assert html.count("<svg") >= 4  # histogram, abilities, DPS over time, auras
    assert "report version 1" in html


def test_everything_shown_is_escaped() -> None:
    report = v1_report()
    report["abilities"][0]["label"] = "<script>alert(1)</script>"
    report["fight"]["name"] = '"><img src=x onerror=alert(1)>'
    report["novel_section"] = [{"what": "<iframe src=//evil>", "value": 1.5}]
    html = report_html(report)
    inert(html)
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;iframe src=//evil&gt;" in html  # an unknown section is still shown


def test_wowlab_sim_writes_the_html_report(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    args = ["fire_mage", "-n", "120", "--seed", "5", "--nodes", "1", "--chunks", "3", "--json"]
    done = subprocess.run(
        [sys.executable, "-m", "wowlab_core", "sim", *args, "--html", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "COLUMNS": "100"},
    )
    assert done.returncode == 0, done.stderr
    assert f"HTML report written to {out}" in done.stderr
    report = json.loads(done.stdout)
    html = out.read_text(encoding="utf-8")
    inert(html)
    assert report["report_version"] == 2
    for key in ("mean", "error95", "p1", "p5", "q1", "median", "q3", "p95", "p99"):
        assert f'id="dps-{key}">{report["dps"][key]:,}<' in html, key
    assert "<title>fire_mage · wowlab report</title>" in html


def test_the_cli_reads_a_version_1_report_with_names_and_cooldowns_apart() -> None:
    report = v1_report()
    tables = {t.title: t for t in report_tables(report) if isinstance(t, Table)}
    distribution = tables["Distribution"]
    assert "q1" in distribution.columns and "p1" not in distribution.columns
    q1 = distribution.rows[0][list(distribution.columns).index("q1")]
    assert q1 == report["dps"]["q1"]
    abilities = tables["Abilities"]
    assert abilities.columns[0] == "ability" and "label" not in abilities.columns
    assert [row[0] for row in abilities.rows][:3] == ["Fireball", "Pyroblast", "Scorch"]
    assert [row[0] for row in tables["Cooldowns and utility"].rows] == ["Combustion", "Time Warp"]
    assert tables["Procs"].rows[0][0] == "Hot Streak"
    # CSV keeps the ids (for scripts), with the label beside them.
    csv_tables = {t.title: t for t in report_tables(report, ids=True) if isinstance(t, Table)}
    assert csv_tables["Abilities"].columns[:2] == ["ability", "label"]
    assert csv_tables["Abilities"].rows[0][:2] == ["fireball", "Fireball"]


def test_long_bar_labels_are_cut_and_kept_whole_in_the_tooltip() -> None:
    from wowlab_core.report_svg import LABEL_CHARS, ability_bars, short

    chart = ability_bars([{"ability": "a_very_long_ability_name_here", "dps": 100, "damage": 5}])
    assert ">A Very Long Abi…</text>" in chart  # fits the label column, even on a phone
    assert len(short("x" * 40)) == LABEL_CHARS and short("x" * LABEL_CHARS) == "x" * LABEL_CHARS
    assert "<title>A Very Long Ability Name Here: 100</title>" in chart
    assert ">Fireball</text>" in ability_bars([{"ability": "fireball", "dps": 1, "damage": 1}])


def test_an_html_file_in_a_missing_folder_is_refused_before_the_sim_runs(tmp_path: Path) -> None:
    target = tmp_path / "no-such-folder" / "report.html"
    done = subprocess.run(
        [sys.executable, "-m", "wowlab_core", "sim", "fire_mage", "--html", str(target)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        f"error: cannot write {target}: no folder {target.parent}"
    ]
    assert done.stdout == ""  # refused before any work: no report
