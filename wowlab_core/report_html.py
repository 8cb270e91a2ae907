"""A report as one standalone HTML file: inline CSS and SVG, no script, nothing to fetch.

It opens offline in any browser, can be mailed or attached to a forum post, and shows the
numbers of the JSON report with every digit the JSON holds (thousands separated): DPS with
its error, the distribution and its percentiles, the histogram, abilities (cooldowns
apart), targets, auras, procs, resources, the fight, timelines and the sample sequence.
Sections it does not know are shown as plain tables, so a newer engine's extra sections
are not lost. Built by ``wowlab sim --html``, ``wowlab jobs ID --html`` and the portal's
``/jobs/{id}/report.html``; everything shown is escaped.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from html import escape
from pathlib import Path
from typing import Any

from wowlab_core import report_svg
from wowlab_core.errors import InvalidRequest, WowlabError
from wowlab_core.report_view import humanize, row_label, split_abilities

DASH = "\u2013"  # shown for a missing value
#: The distribution's figures, in the order shown (a version-1 report has no p1..p99).
DISTRIBUTION = (
    ("std", "Std dev"),
    ("min", "Min"),
    ("p1", "1 %"),
    ("p5", "5 %"),
    ("q1", "25 %"),
    ("median", "Median"),
    ("q3", "75 %"),
    ("p95", "95 %"),
    ("p99", "99 %"),
    ("max", "Max"),
)
ABILITY_COLUMNS = (
    ("dps", "DPS"),
    ("share_pct", "Share %"),
    ("executes", "Casts"),
    ("dpe", "DPE"),
    ("dpet", "DPET"),
    ("hits", "Hits"),
    ("crit_pct", "Crit %"),
    ("avg_hit", "Avg hit"),
    ("avg_crit", "Avg crit"),
    ("min_hit", "Min hit"),
    ("max_hit", "Max hit"),
    ("ticks", "Ticks"),
    ("tick_crit_pct", "Tick crit %"),
    ("avg_tick", "Avg tick"),
)
#: Top-level keys drawn by a section of their own (the rest go to generic tables).
KNOWN = frozenset(
    {
        "report_version",
        "engine",
        "config_hash",
        "seed",
        "iterations",
        "dps",
        "histogram",
        "events",
        "target_error",
        "target_error_reached",
        "abilities",
        "targets",
        "ability_targets",
        "auras",
        "procs",
        "resources",
        "resource_gains",
        "fight",
        "timelines",
        "sample_sequence",
        "compare_sums",
        "metrics",
        "timing",
        "name",
    }
)

STYLE = """
:root { --fg: #1d1f27; --muted: #555a6b; --bg: #f5f6fa; --card: #fff; --accent: #3b5bdb;
  --bad: #c92a2a; --line: #dde0ea; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: var(--fg);
  background: var(--bg); margin: 0; padding: 1.5rem; }
main { max-width: 1100px; margin: 0 auto; }
h1, p, dd, summary { overflow-wrap: anywhere; }
h1 { margin: 0 0 .25rem; font-size: 1.6rem; }
h2 { margin: 1.6rem 0 .5rem; font-size: 1.2rem; }
.meta { color: var(--muted); margin: 0 0 1rem; }
.headline { background: var(--card); border: 1px solid var(--line); border-radius: 8px;
  padding: 1rem 1.2rem; }
.headline .dps { font-size: 1.5rem; margin: 0; }
.scroll { overflow-x: auto; }
table { border-collapse: collapse; background: var(--card); margin: .5rem 0; }
th, td { border: 1px solid var(--line); padding: .3rem .55rem; text-align: right;
  white-space: nowrap; font-variant-numeric: tabular-nums; }
th:first-child, td:first-child { text-align: left; }
th { background: #eef0f6; font-weight: 600; }
dl { display: grid; grid-template-columns: max-content 1fr; gap: .2rem 1rem; margin: .5rem 0; }
dt { color: var(--muted); }
dd { margin: 0; font-variant-numeric: tabular-nums; }
svg.chart { background: var(--card); border: 1px solid var(--line); border-radius: 6px;
  font-size: 12px; margin: .5rem 0; max-width: 900px; }
svg.chart .bar { fill: var(--accent); }
svg.chart .axis { stroke: #889; }
svg.chart .mean { stroke: var(--bad); stroke-width: 2; stroke-dasharray: 4 3; }
svg.chart text { fill: var(--fg); }
svg.timeline .line, svg.timeline polyline.line { fill: none; stroke-width: 1.5; }
svg.timeline text.legend { stroke: none; }
.series-0 { stroke: #3b6fd4; fill: #3b6fd4; } .series-1 { stroke: #d4613b; fill: #d4613b; }
.series-2 { stroke: #2e9e5b; fill: #2e9e5b; } .series-3 { stroke: #9b4fd1; fill: #9b4fd1; }
.series-4 { stroke: #c9a227; fill: #c9a227; } .series-5 { stroke: #1f9fb0; fill: #1f9fb0; }
.series-6 { stroke: #d13b7a; fill: #d13b7a; } .series-7 { stroke: #6b6b6b; fill: #6b6b6b; }
footer { color: var(--muted); margin-top: 2rem; font-size: .85rem; }
@media (max-width: 600px) { body { padding: .6rem; } svg.chart { font-size: 16px; } }
@media print { body { background: #fff; } .scroll { overflow: visible; } }
"""


def number(value: Any) -> str:
    """A JSON value as shown: numbers with every digit and thousands separators."""
    if value is None:
        return DASH
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        return f"{value:,}" if math.isfinite(value) else str(value)
    return str(value)


def _cell(value: Any, cell_id: str | None = None) -> str:
    ident = f' id="{escape(cell_id)}"' if cell_id else ""
    return f"<td{ident}>{escape(number(value))}</td>"


def _table(
    table_id: str,
    headers: Sequence[str],
    rows: Sequence[Sequence[Any]],
    *,
    cell_ids: Callable[[int, int], str | None] | None = None,
) -> str:
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>"
        + "".join(_cell(v, cell_ids(r, c) if cell_ids else None) for c, v in enumerate(row))
        + "</tr>"
        for r, row in enumerate(rows)
    )
    return (
        f'<div class="scroll"><table id="{escape(table_id)}"><thead><tr>{head}</tr></thead>'
        f"<tbody>{body}</tbody></table></div>"
    )


def _rows_table(table_id: str, rows: Sequence[Mapping[str, Any]], key: str | None) -> str:
    """A list of report rows as a table: the name column (labelled) first, then the rest."""
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns and k != "label" and k != key]
    headers = ([humanize(key)] if key else []) + [k.replace("_", " ") for k in columns]
    values = [
        ([row_label(row, key)] if key else []) + [row.get(k) for k in columns] for row in rows
    ]
    return _table(table_id, headers, values)


def _generic(name: str, section: Any) -> str:
    """A section this module has no layout for: rows, key/values, or one value."""
    title = f"<h2>{escape(humanize(name))}</h2>"
    if isinstance(section, list) and section and all(isinstance(r, Mapping) for r in section):
        return title + _rows_table(f"section-{name}", section, None)
    if isinstance(section, Mapping):
        scalars = {k: v for k, v in section.items() if not isinstance(v, (list, Mapping))}
        parts = [title] if scalars else []
        if scalars:
            parts.append(_dl(f"section-{name}", scalars))
        for key, value in section.items():
            if isinstance(value, (list, Mapping)):
                parts.append(_generic(f"{name} {key}", value))
        return "".join(parts)
    if isinstance(section, list):
        return ""
    return title + f"<p>{escape(number(section))}</p>"


def _dl(dl_id: str, items: Mapping[str, Any]) -> str:
    body = "".join(
        f"<dt>{escape(str(k).replace('_', ' '))}</dt>"
        f'<dd id="{escape(dl_id)}-{escape(str(k))}">{escape(number(v))}</dd>'
        for k, v in items.items()
    )
    return f'<dl id="{escape(dl_id)}">{body}</dl>'


def _headline(report: Mapping[str, Any]) -> str:
    dps = report.get("dps") or {}
    engine = report.get("engine") or {}
    target = ""
    if report.get("target_error") is not None:
        reached = report.get("target_error_reached")
        state = "reached" if reached else "not reached" if reached is False else ""
        target = (
            f'<p>Target error <span id="target-error">{escape(number(report["target_error"]))}'
            f"</span> % {state}</p>"
        )
    return (
        '<section class="headline" id="report"><p class="dps">'
        f'<strong id="dps-mean">{escape(number(dps.get("mean")))}</strong> DPS ± '
        f'<span id="dps-error95">{escape(number(dps.get("error95")))}</span> '
        f'(<span id="dps-error_pct">{escape(number(dps.get("error_pct")))}</span> %, '
        "95 % confidence)</p>"
        f'<p><span id="iterations">{escape(number(report.get("iterations")))}</span> iterations'
        f' · seed <span id="seed">{escape(str(report.get("seed")))}</span>'
        f" · engine {escape(str(engine.get('name') or '?'))} "
        f"{escape(str(engine.get('version') or ''))}"
        f' · <span id="events">{escape(number(report.get("events", 0)))}</span> events</p>'
        f"{target}</section>"
    )


def _distribution(report: Mapping[str, Any]) -> str:
    dps = report.get("dps") or {}
    if not dps:
        return ""
    shown = [(k, title) for k, title in DISTRIBUTION if k in dps]
    table = _table(
        "distribution",
        [title for _, title in shown],
        [[dps[k] for k, _ in shown]],
        cell_ids=lambda _r, c: f"dps-{shown[c][0]}",
    )
    bins = report.get("histogram") or []
    hist_rows = [[b.get("low"), b.get("high"), b.get("count")] for b in bins]
    hist_table = (
        "<details><summary>Histogram bins</summary>"
        + _table("histogram", ["From DPS", "To DPS", "Iterations"], hist_rows)
        + "</details>"
        if bins
        else ""
    )
    return (
        "<h2>DPS distribution</h2>"
        + table
        + report_svg.dps_histogram(bins, dps or None)
        + hist_table
    )


def _abilities(report: Mapping[str, Any]) -> str:
    damage, utility = split_abilities(report.get("abilities") or [])
    parts = []
    if damage:
        parts.append("<h2>Abilities</h2>" + report_svg.ability_bars(damage))
        rows = [[row_label(a, "ability"), *(a.get(k) for k, _ in ABILITY_COLUMNS)] for a in damage]
        parts.append(_table("abilities", ["Ability", *(t for _, t in ABILITY_COLUMNS)], rows))
    if utility:
        rows = [[row_label(a, "ability"), a.get("executes"), a.get("execute_s")] for a in utility]
        parts.append(
            "<h2>Cooldowns and utility</h2>"
            + _table("utility", ["Ability", "Casts", "Cast time (s)"], rows)
        )
    return "".join(parts)


def _targets(report: Mapping[str, Any]) -> str:
    targets = report.get("targets") or []
    if not targets:
        return ""
    rows = [[t.get("target"), t.get("dps"), t.get("share_pct")] for t in targets]
    parts = ["<h2>Targets</h2>", _table("targets", ["Target", "DPS", "Share %"], rows)]
    by_ability = report.get("ability_targets") or []
    if by_ability:
        rows = [
            [row_label(t, "ability"), t.get("target"), t.get("dps"), t.get("share_pct")]
            for t in by_ability
        ]
        parts.append(
            "<details><summary>By ability and target</summary>"
            + _table("ability-targets", ["Ability", "Target", "DPS", "Share %"], rows)
            + "</details>"
        )
    return "".join(parts)


def _resources(report: Mapping[str, Any], charts: Mapping[str, str]) -> str:
    resources = report.get("resources") or []
    if not resources:
        return ""
    parts = ["<h2>Resources</h2>", _rows_table("resources", resources, "resource")]
    gains = report.get("resource_gains") or []
    if gains:
        parts.append(_rows_table("resource-gains", gains, "resource"))
    for key, chart in charts.items():
        if key.startswith("resource:"):
            parts.append(f"<h3>{escape(humanize(key[9:]))} over time</h3>{chart}")
    return "".join(parts)


def _sample_sequence(report: Mapping[str, Any]) -> str:
    rows = report.get("sample_sequence") or []
    if not rows:
        return ""
    labels = {str(a.get("ability")): row_label(a, "ability") for a in report.get("abilities") or []}
    rows = [
        {k: labels.get(str(v)) or humanize(str(v)) if k == "spell" else v for k, v in row.items()}
        for row in rows
    ]
    return (
        "<h2>Sample sequence</h2>"
        f"<details><summary>Iteration 0: {len(rows):,} casts</summary>"
        + _rows_table("sample-sequence", rows, None)
        + "</details>"
    )


def report_html(report: Mapping[str, Any], *, title: str | None = None) -> str:
    """The whole report as one HTML document (a ``str``; write it as UTF-8)."""
    fight = report.get("fight") or {}
    name = title or report.get("name") or fight.get("name") or "Simulation"
    charts = report_svg.timeline_charts(report)
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        # Nothing may load from anywhere: the file must open offline, and stay inert.
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        f"<title>{escape(str(name))} · wowlab report</title>",
        f"<style>{STYLE}</style></head><body><main>",
        f"<h1>{escape(str(name))}</h1>",
        f'<p class="meta">config {escape(number(report.get("config_hash")))}</p>',
        _headline(report),
        _distribution(report),
        _abilities(report),
        _targets(report),
    ]
    if "dps" in charts:
        parts.append("<h2>DPS over time</h2>" + charts["dps"])
    if fight:
        parts.append("<h2>Fight</h2>" + _dl("fight", fight))
    parts.append(_resources(report, charts))
    procs = report.get("procs") or []
    if procs:
        parts.append("<h2>Procs</h2>" + _rows_table("procs", procs, "proc"))
    auras = report.get("auras") or []
    if auras:
        parts.append("<h2>Auras</h2>" + report_svg.aura_uptimes(auras))
        parts.append(_rows_table("auras", auras, "aura"))
        parts.append(charts.get("auras", ""))
    parts.append(_sample_sequence(report))
    for key, section in report.items():
        if key not in KNOWN:
            parts.append(_generic(key, section))
    version = report.get("report_version", 1)
    parts.append(
        f"<footer>Made with wowlab · report version {escape(str(version))}. "
        "Per-ability, per-target and fight figures are means over the iterations.</footer>"
    )
    parts.append("</main></body></html>\n")
    return "".join(parts)


def check_html_target(path: Path) -> None:
    """Refuse, before any work, an ``--html`` file whose folder does not exist.

    Raises:
        InvalidRequest: the folder is missing (the message names it).
    """
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise InvalidRequest(f"cannot write {path}: no folder {folder}", field="html")


def write_html_report(path: Path, report: Mapping[str, Any], *, title: str | None = None) -> None:
    """Write :func:`report_html` to ``path`` (UTF-8).

    Raises:
        WowlabError: the file cannot be written (the message names it and why).
    """
    try:
        path.write_text(report_html(report, title=title), encoding="utf-8")
    except OSError as exc:
        raise WowlabError(f"cannot write {path}: {exc.strerror or exc}") from None


__all__ = ["check_html_target", "report_html", "write_html_report"]
