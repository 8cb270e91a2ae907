"""A plugin whose registration hooks raise."""

from __future__ import annotations

from typing import Any

import click

from wowlab_core.hookspecs import hookimpl


@hookimpl
def wowlab_register_commands(cli: click.Group) -> None:
    @cli.command("broken-hello")
    def hello() -> None:
        """Must never be reachable: the plugin failed while registering."""

    raise RuntimeError("cannot read my settings file")


@hookimpl
def wowlab_register_engines(register: Any) -> None:
    raise RuntimeError("cannot read my settings file")
