"""``wowlab sim``: run a simulation on the embedded pool and print the report."""

from __future__ import annotations

import os
import secrets
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from wowlab_core.cli.output import output_options
from wowlab_core.cli.render import print_report, target_error_warning
from wowlab_core.errors import ConfigInvalid, InvalidRequest, WowlabError
from wowlab_core.hashing import parse_json
from wowlab_core.jobs import DEFAULT_MAX_ITERATIONS, JobLimits
from wowlab_core.localpool import Progress as JobProgress
from wowlab_core.localpool import SimulationRun, run_local_simulation
from wowlab_core.plugins import Hooks, get_hooks
from wowlab_core.profilesets import DEFAULT_DELTA, parse_profileset_option
from wowlab_core.report_html import check_html_target, write_html_report

MAX_CONFIG_BYTES = 4 * 1024 * 1024


def load_config(source: str, hooks: Hooks) -> Any:
    """Read a config from a file path, ``-`` (stdin), or an engine's example name."""
    if source == "-":
        data = sys.stdin.buffer.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigInvalid(
                f"the config on stdin is larger than {MAX_CONFIG_BYTES // 1024 // 1024} MiB"
            )
        return parse_json(data, what="stdin")
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
    if not examples:
        raise ConfigInvalid(
            f"no such file: {source!r}, and no engine with example configs is installed: "
            "pip install 'wowlab[engine]'"
        )
    known = ", ".join(sorted(examples))
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
    help="Add iterations until the 95% error is below this percentage of the mean.",
)
@click.option(
    "--max-iterations",
    type=int,
    default=DEFAULT_MAX_ITERATIONS,
    show_default=True,
    help="Upper bound of iterations (also for --target-error).",
)
@click.option(
    "--scale-factors",
    "scale_factor_stats",
    default=None,
    metavar="STATS",
    help="Stat weights: comma-separated stats (crit,haste,mastery,versatility,primary), "
    "each run +delta against the base with common random numbers.",
)
@click.option(
    "--delta",
    type=float,
    default=DEFAULT_DELTA,
    show_default=True,
    help="Stat added per scale-factor variant (rating; points of primary).",
)
@click.option(
    "--profileset",
    "profileset_options",
    multiple=True,
    metavar="NAME=PATCH.json",
    help="A variant of CONFIG (a JSON merge patch); repeat. Ranked with staged culling.",
)
@click.option(
    "--profilesets",
    "sweep_file",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="A sweep file of variants: {NAME: PATCH, ...} or {'sweep': {'path', 'values'}}.",
)
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Also write the report as one standalone HTML file (opens offline).",
)
@output_options
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
    scale_factor_stats: str | None,
    delta: float,
    profileset_options: tuple[str, ...],
    sweep_file: Path | None,
    html_path: Path | None,
    output_format: str,
) -> None:
    """Simulate CONFIG (a JSON file, '-' for stdin, or an example name) on local nodes."""
    if html_path is not None:
        check_html_target(html_path)
    hooks = get_hooks()
    parsed = load_config(config, hooks)
    if chunk_size is not None and chunks is not None:
        raise InvalidRequest("give --chunk-size or --chunks, not both", field="chunks")
    console = Console(stderr=True)
    runner = JobRunner(
        hooks=hooks,
        console=console,
        show_progress=output_format == "table" and console.is_terminal,
        seed=seed if seed is not None else secrets.randbits(32),
        nodes=nodes if nodes is not None else _default_nodes(),
        engine_name=engine_name,
        chunk_size=chunk_size,
        chunks=chunks,
        max_iterations=max_iterations,
    )
    if scale_factor_stats is not None or profileset_options or sweep_file is not None:
        from wowlab_core.cli.compare import run_compare

        report, timing = run_compare(
            parsed,
            runner,
            stats=scale_factor_stats,
            delta=delta,
            profilesets=[
                parse_profileset_option(v, lambda s: load_config(s, hooks))
                for v in profileset_options
            ],
            sweep_file=sweep_file,
            iterations=iterations,
            target_error=target_error,
        )
    else:
        runner.compile(parsed)
        run = runner.run(parsed, iterations, target_error=target_error)
        report, timing = run.report or {}, run.timing
    print_report(Console(), report, timing, output_format=output_format)
    if html_path is not None:
        write_html_report(html_path, report, title=config_title(config, parsed))
        click.echo(f"HTML report written to {html_path}", err=True)
    warning = target_error_warning(report) if "dps" in report else None
    if warning:
        click.echo(warning, err=True)


def config_title(source: str, parsed: Any) -> str:
    """What a report of CONFIG is called: the config's ``name``, else the file's stem."""
    name = parsed.get("name") if isinstance(parsed, dict) else None
    if isinstance(name, str) and name.strip():
        return name.strip()
    return Path(source).stem if source != "-" else "Simulation"


@dataclass
class JobRunner:
    """Runs jobs of one ``wowlab sim`` on the embedded pool, with a progress bar."""

    hooks: Hooks
    console: Console
    show_progress: bool
    seed: int
    nodes: int
    engine_name: str | None
    chunk_size: int | None
    chunks: int | None
    max_iterations: int
    label: str = "simulating"

    def compile(self, parsed: Any) -> None:
        """Validate, and compile the engine before the clock starts: numba compiles on
        first use (tens of seconds on a new machine, cached afterwards)."""
        engine = self.hooks.engine(self.engine_name)
        prepared = engine.prepare(parsed)
        with self.console.status(f"preparing the {engine.name} engine (compiles once per machine)"):
            engine.run_chunk(prepared, seed=0, seed_offset=0, iterations=1)

    def run(
        self, parsed: Any, iterations: int, *, target_error: float | None = None
    ) -> SimulationRun:
        """One job of ``parsed``; raises ClickException unless it completes."""
        with Progress(
            TextColumn(f"[bold]{self.label}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("iterations  {task.fields[chunks]}  {task.fields[nodes]}"),
            TimeRemainingColumn(),
            console=self.console,
            disable=not self.show_progress,
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
                hooks=self.hooks,
                iterations=iterations,
                seed=self.seed,
                nodes=self.nodes,
                engine_name=self.engine_name,
                chunk_size=self.chunk_size,
                chunks=self.chunks,
                target_error=target_error,
                limits=JobLimits(max_iterations=self.max_iterations),
                on_progress=on_progress,
            )
        if run.report is None:
            raise WowlabError(f"the simulation {run.status}: {run.error or 'no report'}")
        return run
