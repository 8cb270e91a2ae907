"""Data on the terminal: ``--format table|json|markdown|csv`` and tables that fit the width.

Every command that prints data takes :func:`output_options`. In ``table`` format a table is
drawn in the first layout that fits the console's width (a terminal's, or ``COLUMNS``, or 80
when piped): a boxed table, then a compact one whose text columns may wrap, then one block
per row (``name  value`` lines). Numbers are never wrapped or cut, and are printed with
every digit the JSON holds (``2,304,607.6``, not ``2,304,…``). ``markdown`` prints GitHub
tables, ``csv`` one CSV section per table (a ``# title`` line, then a header row; sections are
separated by a blank line).
"""

from __future__ import annotations

import csv
import functools
import io
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
from rich import box
from rich.console import Console
from rich.table import Table as RichTable
from rich.text import Text

FORMATS = ("table", "json", "markdown", "csv")
F = TypeVar("F", bound=Callable[..., Any])


def output_options(f: F) -> F:
    """Add ``--format`` and its alias ``--json``; the command receives ``output_format``."""

    @functools.wraps(f)
    def wrapper(*args: Any, output_format: str, as_json: bool, **kwargs: Any) -> Any:
        if as_json and output_format not in ("table", "json"):
            raise click.UsageError(f"--json and --format {output_format} do not go together")
        return f(*args, output_format="json" if as_json else output_format, **kwargs)

    wrapper = click.option("--json", "as_json", is_flag=True, help="Same as --format json.")(
        wrapper
    )
    wrapper = click.option(
        "--format",
        "output_format",
        type=click.Choice(FORMATS),
        default="table",
        show_default=True,
        help="How to print the data.",
    )(wrapper)
    return wrapper  # type: ignore[return-value]


def is_number(value: Any) -> bool:
    """An int or a finite float, not a bool."""
    if isinstance(value, bool):
        return False
    return isinstance(value, int) or (isinstance(value, float) and math.isfinite(value))


def fmt_value(value: Any) -> str:
    """A value for people: numbers with thousands separators and every digit of the JSON."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, float)):
        return f"{value:,}"
    if isinstance(value, (list, tuple)):
        return ", ".join(fmt_value(v) for v in value)
    return str(value)


def csv_value(value: Any) -> str:
    """A value for machines: plain numbers, ``true``/``false``, lists joined by spaces."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return " ".join(csv_value(v) for v in value)
    return str(value)


def header(name: str) -> str:
    """A column name for people: ``share_pct`` -> ``share pct`` (so it can wrap)."""
    return name.replace("_", " ")


@dataclass
class Table:
    """Rows of data with named columns; numeric columns are right-aligned and never cut."""

    title: str | None
    columns: Sequence[str]
    rows: Sequence[Sequence[Any]] = field(default_factory=list)

    @classmethod
    def from_dicts(cls, title: str | None, rows: Sequence[dict[str, Any]]) -> Table:
        """A table of dicts (the columns of the first, then any new keys in order)."""
        columns: list[str] = []
        for row in rows:
            columns.extend(k for k in row if k not in columns)
        return cls(title, columns, [[row.get(c) for c in columns] for row in rows])

    @classmethod
    def key_values(cls, title: str | None, pairs: dict[str, Any]) -> Table:
        """A two-column table ``name | value``."""
        return cls(title, ["name", "value"], [[k, v] for k, v in pairs.items()])

    def numeric(self, index: int) -> bool:
        """Whether every filled cell of column ``index`` is a number."""
        cells = [row[index] for row in self.rows if row[index] not in (None, "")]
        return bool(cells) and all(is_number(c) for c in cells)


def _widths(table: Table) -> tuple[list[int], list[int]]:
    """Each column's ideal width (header and cells on one line) and its least width (numbers
    whole, headers and text wrapped at spaces, words longer than 20 characters cut)."""
    ideal, least = [], []
    for i, column in enumerate(table.columns):
        name = header(column)
        cells = [fmt_value(row[i]) for row in table.rows]
        widest = max((len(c) for c in cells), default=0)
        words = max((len(w) for w in name.split()), default=1)
        if table.numeric(i):
            least.append(max(widest, words))
        else:
            longest_word = max((len(w) for c in cells for w in c.split()), default=1)
            least.append(max(words, min(longest_word, 20)))
        ideal.append(max(len(name), widest, least[-1]))
    return ideal, least


def _fit(ideal: list[int], least: list[int], room: int) -> list[int] | None:
    """Take one character at a time from the column with the most slack until the columns
    fit ``room``; None if even the least widths do not fit."""
    if sum(least) > room:
        return None
    widths = list(ideal)
    for _ in range(sum(widths) - room):
        _, index = max((w - m, i) for i, (w, m) in enumerate(zip(widths, least, strict=True)))
        widths[index] -= 1
    return widths


def _rich(table: Table, widths: list[int], *, compact: bool) -> RichTable:
    out = RichTable(
        title=table.title,
        box=None if compact else box.HEAVY_HEAD,
        padding=(0, 1),
        pad_edge=not compact,
        show_edge=not compact,
        title_justify="left" if compact else "center",
        header_style="bold underline" if compact else "bold",
    )
    for i, column in enumerate(table.columns):
        out.add_column(
            header(column),
            justify="right" if table.numeric(i) else "left",
            width=widths[i],
            overflow="fold",
        )
    for row in table.rows:
        out.add_row(*(Text(fmt_value(v)) for v in row))
    return out


def _vertical(console: Console, table: Table) -> None:
    """One block per row: the first column as its heading, then ``name  value`` lines."""
    if table.title:
        console.print(Text(table.title, style="bold"))
    if len(table.rows) == 1:
        names = [header(c) for c in table.columns]
        width = max(len(n) for n in names)
        for name, value in zip(names, table.rows[0], strict=True):
            console.print(Text(f"  {name:<{width}}  {fmt_value(value)}"), overflow="fold")
        return
    names = [header(c) for c in table.columns[1:]]
    width = max((len(n) for n in names), default=0)
    for row in table.rows:
        console.print(Text(f"{header(table.columns[0])}: {fmt_value(row[0])}", style="bold"))
        for name, value in zip(names, row[1:], strict=True):
            console.print(Text(f"  {name:<{width}}  {fmt_value(value)}"), overflow="fold")


def print_table(console: Console, table: Table) -> None:
    """Draw ``table`` in the first layout that fits ``console.width``."""
    if not table.rows:
        if table.title:
            console.print(Text(f"{table.title}: none"))
        return
    ideal, least = _widths(table)
    columns = len(table.columns)
    if sum(ideal) + 3 * columns + 1 <= console.width:  # borders and padding of a boxed table
        console.print(_rich(table, ideal, compact=False))
        return
    widths = _fit(ideal, least, console.width - 2 * (columns - 1))
    if widths is not None:
        console.print(_rich(table, widths, compact=True))
        return
    _vertical(console, table)


def markdown_table(table: Table) -> str:
    """A GitHub markdown table (with a ``### title`` heading)."""
    lines = [f"### {table.title}", ""] if table.title else []

    def cell(value: Any) -> str:
        return fmt_value(value).replace("|", "\\|").replace("\n", " ")

    lines.append("| " + " | ".join(header(c) for c in table.columns) + " |")
    lines.append(
        "|"
        + "|".join("---:" if table.numeric(i) else "---" for i in range(len(table.columns)))
        + "|"
    )
    lines.extend("| " + " | ".join(cell(v) for v in row) + " |" for row in table.rows)
    return "\n".join(lines) + "\n"


def csv_table(table: Table) -> str:
    """One CSV section: ``# title``, the header row, the rows."""
    buffer = io.StringIO()
    if table.title:
        buffer.write(f"# {table.title}\n")
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(table.columns)
    writer.writerows([csv_value(v) for v in row] for row in table.rows)
    return buffer.getvalue()


def emit(
    output_format: str,
    *,
    data: Any,
    tables: Callable[[], Sequence[Table | str]],
    console: Console | None = None,
) -> None:
    """Print ``data`` as JSON, or the tables (and text lines) ``tables()`` makes."""
    if output_format == "json":
        click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str))
        return
    parts = tables()
    if output_format == "markdown":
        click.echo("\n".join(p if isinstance(p, str) else markdown_table(p) for p in parts))
    elif output_format == "csv":
        click.echo("\n".join(csv_table(p) for p in parts if isinstance(p, Table)), nl=False)
    else:
        console = console or Console()
        for part in parts:
            if isinstance(part, str):
                console.print(Text(part), overflow="fold")
            else:
                print_table(console, part)


__all__ = [
    "FORMATS",
    "Table",
    "csv_table",
    "emit",
    "fmt_value",
    "markdown_table",
    "output_options",
    "print_table",
]
