"""An example third-party plugin: a CLI command, the toy engine, a claim-code prefix and an
event listener. The test suite installs this package and checks each hook is called."""

from __future__ import annotations

import json
import os
from typing import Any

import click

from wowlab_core.hookspecs import hookimpl
from wowlab_core.testing.toy_engine import ToyEngine

__version__ = "0.3.1"


@hookimpl
def wowlab_register_commands(cli: click.Group) -> None:
    @cli.command("example-hello")
    @click.argument("name", default="world")
    def hello(name: str) -> None:
        """Say hello from the example plugin."""
        click.echo(f"hello {name} from wowlab-example-plugin")


@hookimpl
def wowlab_register_engines(register: Any) -> None:
    register(ToyEngine())


@hookimpl
def wowlab_job_finished(job: Any) -> None:
    # Written only when a test asks for it, so the hook's call can be observed.
    path = os.environ.get("WOWLAB_EXAMPLE_PLUGIN_LOG")
    if path:
        with open(path, "a", encoding="utf-8") as f:
            f.write(json.dumps({"job": job.id, "status": job.status}) + "\n")
