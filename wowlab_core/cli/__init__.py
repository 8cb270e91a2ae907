"""The ``wowlab`` command line (click + rich).

Every failure ends as one line on stderr (``error: ...``) with exit code 1 (runtime), 2 (usage)
or 130 (interrupted); see :mod:`wowlab_core.cli.failures`. Plugins add commands through
``wowlab_register_commands``; a command that comes with an extra that is not installed says
which pip command brings it.
"""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from wowlab_core import __version__
from wowlab_core.cli.failures import (
    EXIT_INTERRUPTED,
    CommandUnavailable,
    ignore_interrupts,
    install_quiet_hooks,
    mark_interrupted,
    report_failure,
)
from wowlab_core.events import flush_all
from wowlab_core.plugins import EXTRAS, get_hooks, get_registry

#: Commands that optional packages add: command -> (entry-point name, package).
OPTIONAL_COMMANDS: dict[str, tuple[str, str]] = {
    **dict.fromkeys(
        ("up", "portal", "login", "submit", "jobs", "nodes"), ("portal", "wowlab_portal")
    ),
    "engine": ("engine", "wowlab_engine"),
    "mqtt": ("mqtt", "wowlab_transport_mqtt"),
}


def missing_command_hint(name: str) -> str | None:
    """Why ``name`` is no command here, if an optional or broken plugin would bring it."""
    if name not in OPTIONAL_COMMANDS:
        return None
    plugin, package = OPTIONAL_COMMANDS[name]
    for problem in get_registry().problems:
        if problem.name == plugin and problem.kind == "broken":
            return f"`{name}` comes from the plugin {plugin!r}, which is broken: {problem.reason}"
    extra = EXTRAS[package]
    return f"`{name}` needs wowlab[{extra}]: pip install 'wowlab[{extra}]'"


class WowlabGroup(click.Group):
    """The top-level group: one-line failures, and hints for commands of missing extras."""

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        name = click.utils.make_str(args[0]) if args else ""
        if args and self.get_command(ctx, name) is None:
            hint = missing_command_hint(name)
            if hint is not None:
                raise CommandUnavailable(hint, ctx)
        return super().resolve_command(ctx, args)

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        code = 0
        try:
            code = self._run(args, prog_name, complete_var, **extra)
            if code != EXIT_INTERRUPTED:
                flush_all()  # plugin event listeners finish their work before the process ends
        except KeyboardInterrupt:  # Ctrl-C while a failure was being reported, or flushed
            code = EXIT_INTERRUPTED
        if code == EXIT_INTERRUPTED:
            mark_interrupted()
        ignore_interrupts()  # the process is ending: a late Ctrl-C must not print a traceback
        sys.exit(code)

    def _run(
        self,
        args: Sequence[str] | None,
        prog_name: str | None,
        complete_var: str | None,
        **extra: Any,
    ) -> int:
        try:
            result = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.Exit as done:
            return done.exit_code
        except SystemExit as done:
            return done.code if isinstance(done.code, int) else (1 if done.code else 0)
        except BaseException as exc:
            return report_failure(exc)
        return result if isinstance(result, int) else 0


@click.group(cls=WowlabGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="wowlab")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """wowlab: World of Warcraft combat simulations on a pool of volunteer PCs.

    Exit codes: 0 done, 1 failed, 2 bad usage, 130 interrupted (Ctrl-C before a command
    finished; a node or portal stopped with Ctrl-C exits with 0). WOWLAB_DEBUG=1 shows
    tracebacks.
    """
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
    install_quiet_hooks()
    if not _plugins_added:
        _plugins_added = True
        try:
            get_hooks().register_commands(cli)  # broken plugins are set aside, not fatal
        except Exception as exc:  # the plugin machinery itself failed: run without plugins
            click.echo(f"warning: plugins could not add their commands: {exc}", err=True)
    cli.main(args=argv, prog_name="wowlab", standalone_mode=True)


os.environ.setdefault("PYTHONIOENCODING", "utf-8")

__all__ = ["cli", "main", "missing_command_hint"]
