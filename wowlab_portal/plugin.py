"""The portal's wowlab plugin: adds ``wowlab portal``, ``wowlab up``, ``wowlab admin`` and
the portal client commands to the CLI.

It loads without importing the web stack (the CLI starts fast); without the ``portal``
extra, ``wowlab plugins`` lists it as unavailable with the pip command that fixes it.
"""

from __future__ import annotations

import importlib.util

import click

from wowlab_core.hookspecs import hookimpl

for _module in ("fastapi", "uvicorn", "pydantic_settings", "pwdlib", "itsdangerous"):
    if importlib.util.find_spec(_module) is None:
        raise ImportError(f"{_module} is not installed: pip install 'wowlab[portal]'")


@hookimpl
def wowlab_register_commands(cli: click.Group) -> None:
    """Add ``wowlab portal``, ``wowlab up``, ``wowlab admin``, and the commands that use
    a portal (``login``, ``submit``, ``jobs``, ``nodes``)."""
    from wowlab_portal.admin_cli import admin
    from wowlab_portal.cli import portal, up
    from wowlab_portal.client_cli import COMMANDS

    for command in (portal, up, admin, *COMMANDS):
        cli.add_command(command)
