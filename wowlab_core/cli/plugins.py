"""``wowlab plugins``: what is installed, and what could not load."""

from __future__ import annotations

import json

import click
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wowlab_core.plugins import get_registry


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of tables.")
def plugins(as_json: bool) -> None:
    """List plugins: name, version, hooks, and the ones that could not load."""
    registry = get_registry()
    if as_json:
        click.echo(
            json.dumps(
                {
                    "plugins": [p.to_dict() for p in registry.loaded],
                    "unavailable": [u.to_dict() for u in registry.unavailable],
                },
                indent=2,
            )
        )
        return
    console = Console()
    table = Table(title="Plugins")
    for column in ("name", "version", "hooks"):
        table.add_column(column)
    for p in registry.loaded:
        table.add_row(
            escape(p.name) + (" (built-in)" if p.builtin else ""), p.version, ", ".join(p.hooks)
        )
    console.print(table)
    if registry.unavailable:
        missing = Table(title="Unavailable")
        for column in ("name", "reason", "fix"):
            missing.add_column(column)
        for u in registry.unavailable:
            missing.add_row(escape(u.name), escape(u.reason), escape(u.fix))
        console.print(missing)
