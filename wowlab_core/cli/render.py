"""A simulation report for people: a headline, then every engine section as a table.

The text holds every number of the JSON report, with all its digits, so ``wowlab sim ... >
report.txt`` loses nothing: the headline (DPS, error, iterations, seed, events, target
error), the distribution, the engine's sections, the histogram and the timing. Two kinds of
section are summarised instead, and say so: timelines (a mapping of number lists, hundreds
of points each) become sparklines with their range, and a list of more than ``MAX_ROWS``
rows (the sample action sequence) shows its first rows; ``--json`` has them whole.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console

from wowlab_core.cli.output import Table, emit, fmt_value
from wowlab_core.report import dumps_report
from wowlab_core.report_view import row_label, split_abilities

#: Top-level report keys that the headline and the distribution table show.
HEADLINE_KEYS = frozenset(
    {
        "engine",
        "config_hash",
        "seed",
        "iterations",
        "dps",
        "histogram",
        "events",
        "target_error",
        "target_error_reached",
        "timing",
    }
)
DISTRIBUTION = ("std", "min", "p1", "p5", "q1", "median", "q3", "p95", "p99", "max")
#: Sections that are the raw material of other sections (compare jobs' exact sums).
HIDDEN_KEYS = frozenset({"compare_sums", "report_version"})
#: Rows shown of a long list section (the whole list is in ``--json``).
MAX_ROWS = 40
#: Row sections whose first column names a spell, aura or proc (shown by its label).
NAMED_ROWS = {
    "abilities": "ability",
    "ability_targets": "ability",
    "auras": "aura",
    "procs": "proc",
}
SPARK = "▁▂▃▄▅▆▇█"
SPARK_WIDTH = 40


def _title(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def sparkline(values: Sequence[float], width: int) -> str:
    """``values`` as at most ``width`` block characters (each the mean of its slice)."""
    if not values:
        return ""
    n = len(values)
    slots = min(width, n)
    means = []
    for i in range(slots):
        part = values[i * n // slots : (i + 1) * n // slots] or values[i * n // slots :][:1]
        means.append(sum(part) / len(part))
    lo, hi = min(means), max(means)
    if hi <= lo:
        return SPARK[len(SPARK) // 2] * slots
    return "".join(
        SPARK[min(len(SPARK) - 1, int((m - lo) / (hi - lo) * len(SPARK)))] for m in means
    )


def _is_rows(value: Any) -> bool:
    return isinstance(value, list) and bool(value) and all(isinstance(r, Mapping) for r in value)


def _is_series(section: Mapping[str, Any]) -> bool:
    """Timelines: every value a list of numbers or a mapping with ``values`` / ``series``."""
    return bool(section) and all(
        (isinstance(v, list) and all(_is_number(x) for x in v))
        or (isinstance(v, Mapping) and ("values" in v or "series" in v))
        for v in section.values()
    )


def series_tables(name: str, section: Mapping[str, Any]) -> list[Table | str]:
    """Timelines: per group, each list of numbers as a sparkline with its range."""
    parts: list[Table | str] = []
    for group, value in section.items():
        series: dict[str, list[Any]] = {}
        step = value.get("step_s") if isinstance(value, Mapping) else None
        if isinstance(value, Mapping):
            if isinstance(value.get("values"), list):
                series[group] = value["values"]
            series.update(value.get("series") or {})
        elif isinstance(value, list):
            series[group] = value
        rows = []
        for key, values in series.items():
            numbers = [float(v) for v in values if _is_number(v)]
            if numbers:
                rows.append([key, min(numbers), sparkline(numbers, SPARK_WIDTH), max(numbers)])
        if rows:
            every = f" (every {step:g} s)" if _is_number(step) else ""
            title = f"{_title(name)}: {str(group).replace('_', ' ')}{every}"
            parts.append(Table(title, ["series", "min", "over time", "max"], rows))
    if parts:
        parts.append(f"({name.replace('_', ' ')}: every point is in --json)")
    return parts


def labelled(
    rows: Sequence[Mapping[str, Any]], key: str, *, ids: bool = False
) -> list[dict[str, Any]]:
    """Rows with their name column first, showing the label (``Fire Blast``); with ``ids``
    (CSV, for scripts) the column keeps the id and a ``label`` column follows it."""
    rest = [{k: v for k, v in r.items() if k not in (key, "label")} for r in rows]
    if ids:
        return [
            {key: r.get(key), "label": row_label(r, key), **more}
            for r, more in zip(rows, rest, strict=True)
        ]
    return [{key: row_label(r, key), **more} for r, more in zip(rows, rest, strict=True)]


def ability_tables(section: Sequence[Mapping[str, Any]], *, ids: bool = False) -> list[Table | str]:
    """Damage abilities, then the cooldowns and utility spells (cast, no damage)."""
    damage, utility = split_abilities(section)
    parts = rows_tables("abilities", labelled(damage, "ability", ids=ids)) if damage else []
    if utility:
        rows = [
            [
                r.get("ability") if ids else row_label(r, "ability"),
                r.get("executes"),
                r.get("execute_s"),
            ]
            for r in utility
        ]
        parts.append(Table("Cooldowns and utility", ["ability", "casts", "cast time s"], rows))
    return parts


def rows_tables(name: str, section: Sequence[Mapping[str, Any]]) -> list[Table | str]:
    """A list of rows as one table (its first ``MAX_ROWS`` rows)."""
    rows = [dict(r) for r in section[:MAX_ROWS]]
    parts: list[Table | str] = [Table.from_dicts(_title(name), rows)]
    if len(section) > len(rows):
        parts.append(f"... {len(section) - len(rows)} more rows of {name} in --json")
    return parts


def section_tables(name: str, section: Any, *, ids: bool = False) -> list[Table | str]:
    """One report section, by its shape (``ids``: name columns keep the ids, for CSV)."""
    if name == "abilities" and _is_rows(section):
        return ability_tables(section, ids=ids)
    if _is_rows(section):
        if name in NAMED_ROWS:
            section = labelled(section, NAMED_ROWS[name], ids=ids)
        return rows_tables(name, section)
    if isinstance(section, Mapping) and _is_series(section):
        return series_tables(name, section)
    if isinstance(section, Mapping) and section:
        scalars = {k: v for k, v in section.items() if not isinstance(v, (list, Mapping))}
        parts: list[Table | str] = [Table.key_values(_title(name), scalars)] if scalars else []
        for key, value in section.items():
            if isinstance(value, (list, Mapping)):
                parts += section_tables(f"{name} {key}", value, ids=ids)
        return parts
    if not isinstance(section, (list, Mapping)):
        return [f"{name.replace('_', ' ')}: {fmt_value(section)}"]
    return []


def headline(report: dict[str, Any]) -> list[str]:
    """The first lines: mean DPS with its error, then what the run was."""
    dps = report["dps"]
    engine = report.get("engine") or {}
    lines = [
        f"DPS {fmt_value(dps['mean'])} ± {fmt_value(dps['error95'])} "
        f"({fmt_value(dps['error_pct'])} %, 95 % confidence)",
        f"{fmt_value(report['iterations'])} iterations, seed {report['seed']}, "
        f"engine {engine.get('name')} {engine.get('version') or ''}".rstrip()
        + f", {fmt_value(report.get('events', 0))} events",
    ]
    if report.get("target_error") is not None:
        reached = report.get("target_error_reached")
        state = "reached" if reached else "NOT reached" if reached is False else ""
        lines.append(f"target error {fmt_value(report['target_error'])} % {state}".rstrip())
    if report.get("config_hash"):
        lines.append(f"config {report['config_hash']}")
    return lines


def report_tables(
    report: dict[str, Any], timing: dict[str, Any] | None = None, *, ids: bool = False
) -> list[Table | str]:
    """The report as text lines and tables, in reading order. Spells, auras and procs are
    named by their labels; with ``ids`` (CSV) by their ids, with a ``label`` column."""
    dps = report["dps"]
    parts: list[Table | str] = [*headline(report)]
    shown = [k for k in DISTRIBUTION if k in dps] + [
        k for k in dps if k not in (*DISTRIBUTION, "mean", "error95", "error_pct", "iterations")
    ]
    parts.append(Table("Distribution", shown, [[dps[k] for k in shown]]))
    for name, section in report.items():
        if name not in HEADLINE_KEYS and name not in HIDDEN_KEYS:
            parts += section_tables(name, section, ids=ids)
    histogram = report.get("histogram") or []
    if histogram:
        parts.append(histogram_table(histogram))
    if timing:
        figures = [f"{fmt_value(timing['wall_seconds'])} s wall"]
        if "jobs" in timing:
            figures.append(f"{fmt_value(timing['jobs'])} jobs")
        figures.append(f"{fmt_value(timing['iterations_per_second'])} iterations/s")
        if "events_per_second" in timing:
            figures.append(f"{fmt_value(timing['events_per_second'])} events/s")
        parts.append(", ".join(figures))
    return parts


def histogram_table(bins: Sequence[dict[str, Any]]) -> Table:
    """The DPS histogram with a bar per bin."""
    most = max((int(b.get("count", 0)) for b in bins), default=0) or 1
    rows = []
    for b in bins:
        count = int(b.get("count", 0))
        rows.append([b.get("low"), b.get("high"), count, "#" * round(20 * count / most)])
    return Table("DPS histogram", ["low", "high", "count", "bar"], rows)


def target_error_warning(report: dict[str, Any]) -> str | None:
    """The warning for a ``target_error`` job that stopped before reaching it."""
    if report.get("target_error") is None or report.get("target_error_reached") is not False:
        return None
    return (
        f"warning: the target error {report['target_error']} % was not reached "
        f"({report['dps']['error_pct']} % after {report['iterations']:,} iterations, the "
        "most allowed); raise --max-iterations or the target"
    )


def print_report(
    console: Console,
    report: dict[str, Any],
    timing: dict[str, Any] | None = None,
    *,
    output_format: str = "table",
) -> None:
    """Print the report in ``output_format`` (``json``: the report with ``timing``)."""
    if output_format == "json":
        console.file.write(dumps_report({**report, **({"timing": timing} if timing else {})}))
        console.file.write("\n")
        return
    emit(
        output_format,
        data=None,
        tables=lambda: report_tables(report, timing, ids=output_format == "csv"),
        console=console,
    )


__all__ = [
    "headline",
    "histogram_table",
    "print_report",
    "report_tables",
    "section_tables",
    "sparkline",
    "target_error_warning",
]
