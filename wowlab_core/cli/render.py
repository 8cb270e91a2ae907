"""Rich rendering of a report for the terminal."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return str(value)


def print_report(
    console: Console, report: dict[str, Any], timing: dict[str, Any] | None = None
) -> None:
    """Headline DPS, the distribution, then every engine section as a table."""
    dps = report["dps"]
    engine = report.get("engine", {})
    console.print(
        f"[bold]DPS {dps['mean']:,.1f}[/bold] ± {dps['error95']:,.1f} "
        f"({dps['error_pct']:.3f} %, 95 %)   "
        f"{report['iterations']:,} iterations, seed {report['seed']}, "
        f"engine {engine.get('name')} {engine.get('version') or ''}".rstrip()
    )
    stats = Table(title="Distribution", show_header=True)
    for key in ("std", "min", "q1", "median", "q3", "max"):
        stats.add_column(key, justify="right")
    stats.add_row(*(_fmt(dps[k]) for k in ("std", "min", "q1", "median", "q3", "max")))
    console.print(stats)
    skip = {
        "engine",
        "config_hash",
        "seed",
        "iterations",
        "dps",
        "histogram",
        "events",
        "target_error",
    }
    for name, section in report.items():
        if name in skip:
            continue
        if isinstance(section, list) and section and all(isinstance(r, dict) for r in section):
            table = Table(title=name.replace("_", " ").capitalize())
            columns = list(section[0])
            for column in columns:
                table.add_column(column, justify="left" if column == columns[0] else "right")
            for row in section:
                table.add_row(*(_fmt(row.get(c, "")) for c in columns))
            console.print(table)
        elif isinstance(section, dict) and section:
            table = Table(title=name.replace("_", " ").capitalize())
            table.add_column("name")
            table.add_column("value", justify="right")
            for key, value in section.items():
                table.add_row(str(key), _fmt(value))
            console.print(table)
        elif not isinstance(section, (list, dict)):
            console.print(f"{name.replace('_', ' ')}: {_fmt(section)}")
    if timing:
        console.print(
            f"[dim]{timing['wall_seconds']:.2f} s wall, "
            f"{timing['iterations_per_second']:,.0f} iterations/s, "
            f"{timing['events_per_second']:,.0f} events/s[/dim]"
        )


__all__ = ["print_report"]
