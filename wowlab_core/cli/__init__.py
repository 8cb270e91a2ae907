"""The ``wowlab`` command line (click + rich).

Errors that wowlab raises on purpose are printed as one line (``error: ...``) with exit
code 2; plugins add commands through ``wowlab_register_commands``.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

import click
from sqlalchemy import exc as sa_exc

from wowlab_core import __version__
from wowlab_core.errors import WowlabError
from wowlab_core.plugins import get_hooks


class WowlabGroup(click.Group):
    """A click group that turns wowlab errors into one line and exit code 2."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except WowlabError as exc:
            click.echo(f"error: {exc.message}", err=True)
            sys.exit(2)
        except sa_exc.OperationalError as exc:
            reason = str(exc.orig or exc).strip().splitlines()[0]
            click.echo(f"error: cannot use the database: {reason}", err=True)
            sys.exit(2)
        except sa_exc.ArgumentError as exc:
            click.echo(f"error: bad database URL: {str(exc).splitlines()[0]}", err=True)
            sys.exit(2)


@click.group(cls=WowlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wowlab")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """wowlab: World of Warcraft combat simulations on a pool of volunteer PCs."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _add_builtin_commands() -> None:
    from wowlab_core.cli.db import db
    from wowlab_core.cli.node import node
    from wowlab_core.cli.plugins import plugins
    from wowlab_core.cli.sim import sim

    for command in (plugins, sim, node, db):
        cli.add_command(command)


_add_builtin_commands()
_plugins_added = False


def main(argv: list[str] | None = None) -> None:
    """Entry point of the ``wowlab`` console script."""
    global _plugins_added
    if not _plugins_added:
        _plugins_added = True
        try:
            get_hooks().register_commands(cli)
        except Exception as exc:  # a broken plugin must not take the CLI down
            click.echo(f"warning: a plugin failed to add its commands: {exc}", err=True)
    cli.main(args=argv, prog_name="wowlab", standalone_mode=True)


os.environ.setdefault("PYTHONIOENCODING", "utf-8")

__all__ = ["cli", "main"]
