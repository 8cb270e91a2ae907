"""``wowlab sim``: run a simulation on the embedded pool and print the report."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from wowlab_core.cli.render import print_report
from wowlab_core.errors import ConfigInvalid, InvalidRequest
from wowlab_core.hashing import parse_json
from wowlab_core.jobs import DEFAULT_MAX_ITERATIONS, JobLimits
from wowlab_core.localpool import Progress as JobProgress
from wowlab_core.localpool import run_local_simulation
from wowlab_core.plugins import Hooks, get_hooks
from wowlab_core.report import dumps_report

MAX_CONFIG_BYTES = 4 * 1024 * 1024


def load_config(source: str, hooks: Hooks) -> Any:
    """Read a config from a file path, ``-`` (stdin), or an engine's example name."""
    if source == "-":
        return parse_json(sys.stdin.read(MAX_CONFIG_BYTES + 1)[:MAX_CONFIG_BYTES])
    path = Path(source)
    if path.is_file():
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ConfigInvalid(f"{source} is larger than {MAX_CONFIG_BYTES // 1024 // 1024} MiB")
        try:
            return parse_json(path.read_bytes(), what=source)
        except OSError as exc:
            raise ConfigInvalid(f"cannot read {source}: {exc.strerror}") from None
    examples: dict[str, Path] = {}
    for engine in hooks.engines().values():
        for name, example in engine.examples().items():
            examples.setdefault(name, example)
    if source in examples:
        return parse_json(examples[source].read_bytes(), what=source)
    known = ", ".join(sorted(examples)) or "none installed"
    raise ConfigInvalid(f"no such file or example: {source!r} (examples: {known})")


def _default_nodes() -> int:
    return max(1, min(os.cpu_count() or 1, 8))


@click.command("sim")
@click.argument("config")
@click.option("-n", "--iterations", type=int, default=1000, show_default=True)
@click.option("--seed", type=int, default=None, help="Seed of the job (default: random).")
@click.option("--nodes", type=int, default=None, help="Local nodes to run (default: cores, max 8).")
@click.option("--chunk-size", type=int, default=None, help="Iterations per chunk.")
@click.option("--chunks", type=int, default=None, help="Cut the job into this many chunks.")
@click.option("--engine", "engine_name", default=None, help="Engine (default: numba).")
@click.option(
    "--target-error",
    type=float,
    default=None,
    help="Add iterations until the 95%% error is below this percentage of the mean.",
)
@click.option(
    "--max-iterations",
    type=int,
    default=DEFAULT_MAX_ITERATIONS,
    show_default=True,
    help="Upper bound of iterations (also for --target-error).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON only.")
def sim(
    config: str,
    iterations: int,
    seed: int | None,
    nodes: int | None,
    chunk_size: int | None,
    chunks: int | None,
    engine_name: str | None,
    target_error: float | None,
    max_iterations: int,
    as_json: bool,
) -> None:
    """Simulate CONFIG (a JSON file, '-' for stdin, or an example name) on local nodes."""
    hooks = get_hooks()
    parsed = load_config(config, hooks)
    if chunk_size is not None and chunks is not None:
        raise InvalidRequest("give --chunk-size or --chunks, not both", field="chunks")
    console = Console(stderr=True)
    show_progress = not as_json and console.is_terminal
    # Validate, and compile the engine before the clock starts: numba compiles on first use
    # (tens of seconds on a new machine, cached afterwards), which is not simulation speed.
    engine = hooks.engine(engine_name)
    prepared = engine.prepare(parsed)
    with console.status(f"preparing the {engine.name} engine (compiles once per machine)"):
        engine.run_chunk(prepared, seed=0, seed_offset=0, iterations=1)
    with Progress(
        TextColumn("[bold]simulating"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("iterations  {task.fields[chunks]}  {task.fields[nodes]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not show_progress,
        transient=True,
    ) as bar:
        task = bar.add_task("sim", total=iterations, chunks="", nodes="")

        def on_progress(p: JobProgress) -> None:
            bar.update(
                task,
                completed=p.completed_iterations,
                total=p.total_iterations,
                chunks=f"chunks {p.chunks_completed}/{p.chunks_total}",
                nodes=f"nodes working {p.nodes_working}",
            )

        run = run_local_simulation(
            parsed,
            hooks=hooks,
            iterations=iterations,
            seed=seed,
            nodes=nodes if nodes is not None else _default_nodes(),
            engine_name=engine_name,
            chunk_size=chunk_size,
            chunks=chunks,
            target_error=target_error,
            limits=JobLimits(max_iterations=max_iterations),
            on_progress=on_progress,
        )
    if run.report is None:
        raise click.ClickException(f"the simulation {run.status}: {run.error or 'no report'}")
    if as_json:
        click.echo(dumps_report({**run.report, "timing": run.timing}))
    else:
        print_report(Console(), run.report, run.timing)
