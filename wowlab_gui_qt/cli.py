"""``wowlab gui`` and the ``wowlab-gui`` launcher (a gui-script: no terminal needed)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

#: The views ``--screenshot`` renders (kept here: ``wowlab`` loads this module at every start,
#: so it imports no Qt).
VIEWS = ("setup", "claim", "dashboard", "settings", "logs")


def _size(ctx: click.Context, param: click.Parameter, value: str) -> tuple[int, int]:
    from wowlab_gui_qt.app import parse_size

    try:
        return parse_size(value)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None


@click.command("gui")
@click.option(
    "--profile",
    default="default",
    show_default=True,
    help="Settings profile (the same as `wowlab node run --profile`).",
)
@click.option(
    "--settings-file",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Settings file (default: in the data directory).",
)
@click.option("--minimized", is_flag=True, help="Start in the tray (start at login does).")
@click.option(
    "--screenshot",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Render one view offscreen into this PNG file and exit.",
)
@click.option("--view", type=click.Choice(VIEWS), default=None, help="The view to render.")
@click.option(
    "--size",
    default="1280x800",
    show_default=True,
    callback=_size,
    help="Window size of --screenshot, WxH.",
)
def gui(
    profile: str,
    settings_file: Path | None,
    minimized: bool,
    screenshot: Path | None,
    view: str | None,
    size: tuple[int, int],
) -> None:
    """The desktop app of this node: claim it, watch it work, pause it, set it up."""
    if screenshot is not None:
        if view is None:
            raise click.UsageError("--screenshot needs --view (" + "|".join(VIEWS) + ")")
        from wowlab_gui_qt.app import render_screenshot

        render_screenshot(screenshot, view, size)
        click.echo(f"wrote {screenshot} ({view}, {size[0]}x{size[1]})")
        return
    if view is not None:
        raise click.UsageError("--view goes with --screenshot")
    from wowlab_gui_qt.app import run_app

    code = run_app(profile=profile, settings_file=settings_file, minimized=minimized)
    if code:
        sys.exit(code)


def main() -> None:
    """Entry point of the ``wowlab-gui`` launcher."""
    gui.main(prog_name="wowlab-gui")


__all__ = ["VIEWS", "gui", "main"]
