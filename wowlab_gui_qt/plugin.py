"""The desktop app's plugin: adds ``wowlab gui``.

Where the ``gui`` extra is not installed, loading this plugin fails as an import of PySide6
would, so ``wowlab plugins`` lists the app as unavailable with the pip command that fixes it.
PySide6 itself is only imported when the app starts: importing it costs every other command
about half a second, and a Ctrl-C while shiboken initialises aborts the process.
"""

from __future__ import annotations

import importlib.util

import click

from wowlab_core.hookspecs import hookimpl

if importlib.util.find_spec("PySide6") is None:
    raise ModuleNotFoundError("No module named 'PySide6'", name="PySide6")


@hookimpl
def wowlab_register_commands(cli: click.Group) -> None:
    """Add ``wowlab gui``."""
    from wowlab_gui_qt.cli import gui

    cli.add_command(gui)
