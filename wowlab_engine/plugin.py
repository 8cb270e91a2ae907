"""The wowlab plugin of the engine: registers the engines and the ``wowlab engine`` commands."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from wowlab_core.cli.output import Table, emit, output_options
from wowlab_core.hookspecs import hookimpl

# Fail at load time (so `wowlab plugins` can say how to fix it), not at the first run.
for _module in ("numpy", "numba", "pydantic"):
    if importlib.util.find_spec(_module) is None:
        raise ImportError(f"{_module} is not installed: pip install 'wowlab[engine]'")

if TYPE_CHECKING:
    from wowlab_core.engines import Engine


@hookimpl
def wowlab_register_engines(register: Callable[[Engine], None]) -> None:
    """Register ``numba`` (the default engine) and ``reference`` (pure Python)."""
    from wowlab_engine.engine import NumbaEngine, ReferenceEngine

    register(NumbaEngine())
    register(ReferenceEngine())


@click.group("engine")
def engine_group() -> None:
    """The combat engine: config schema and examples."""


@engine_group.command("schema")
def schema_command() -> None:
    """Print the JSON Schema of a simulation config."""
    from wowlab_engine.config import json_schema_text

    click.echo(json_schema_text())


@engine_group.command("examples")
@click.option("--show", "show", metavar="NAME", default=None, help="Print that example's config.")
@output_options
def examples_command(show: str | None, output_format: str) -> None:
    """List the example configs (run one with `wowlab sim NAME`), or print one to start from:
    `wowlab engine examples --show fire_mage > my_char.json`."""
    from wowlab_core.errors import InvalidRequest
    from wowlab_engine.example_configs import example_description, example_paths

    paths = example_paths()
    if show is not None:
        if show not in paths:
            known = ", ".join(sorted(paths)) or "none"
            raise InvalidRequest(f"no example {show!r} (examples: {known})", field="show")
        click.echo(paths[show].read_text(encoding="utf-8").rstrip("\n"))
        return
    rows = [{"name": name, "description": example_description(p)} for name, p in paths.items()]
    emit(output_format, data=rows, tables=lambda: [Table.from_dicts(None, rows)])


@hookimpl
def wowlab_register_commands(cli: click.Group) -> None:
    """Add the ``wowlab engine`` group."""
    cli.add_command(engine_group)
