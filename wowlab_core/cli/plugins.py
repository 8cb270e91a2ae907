"""``wowlab plugins``: what is installed, what each plugin provides, and what is not in use."""

from __future__ import annotations

import click

from wowlab_core.cli.output import Table, emit, output_options
from wowlab_core.plugins import get_registry


@click.command("plugins")
@output_options
def plugins(output_format: str) -> None:
    """List plugins (version, engines, transports, commands, hooks), then the broken and
    unavailable ones with the reason and the fix."""
    registry = get_registry()
    provided = registry.hooks().inventory()  # calls the registration hooks: finds broken ones
    in_use = registry.in_use
    data = {
        "plugins": [p.to_dict(provided.get(p.name)) for p in in_use],
        "broken": [b.to_dict() for b in registry.broken],
        "unavailable": [u.to_dict() for u in registry.unavailable],
    }

    def tables() -> list[Table | str]:
        rows = []
        for p in in_use:
            what = provided.get(p.name)
            provides = []
            if what is not None:
                for kind, names in (
                    ("engines", what.engines),
                    ("transports", what.transports),
                    ("commands", what.commands),
                ):
                    if names:
                        provides.append(f"{kind}: {', '.join(names)}")
            name = p.name + (" (built-in)" if p.builtin else "")
            hooks = [h.removeprefix("wowlab_") for h in p.hooks]
            rows.append([name, p.version, "; ".join(provides), ", ".join(hooks)])
        out: list[Table | str] = [Table("Plugins", ["name", "version", "provides", "hooks"], rows)]
        for title, problems in (("Broken", registry.broken), ("Unavailable", registry.unavailable)):
            if problems:
                out.append(
                    Table(
                        title,
                        ["name", "reason", "fix"],
                        [[u.name, f"{u.stage}: {u.reason}", u.fix] for u in problems],
                    )
                )
        return out

    emit(output_format, data=data, tables=tables)
