"""The CLI against a portal: ``wowlab login``, ``wowlab submit``, ``wowlab jobs``,
``wowlab nodes``.

``login`` stores the portal's URL and a new personal API token (see
:mod:`wowlab_portal.login_store`); the other commands use them.
"""

from __future__ import annotations

import socket
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table

from wowlab_core.cli.render import print_report
from wowlab_core.errors import ConfigInvalid, WowlabError
from wowlab_core.hashing import parse_json
from wowlab_core.report import timing_section
from wowlab_portal.client import PortalClient
from wowlab_portal.login_store import PortalLogin, require_login

MAX_CONFIG_BYTES = 4 * 1024 * 1024
FINISHED = ("completed", "failed", "cancelled")
#: Iterations when neither --iterations nor --target-error is given (as ``wowlab sim``).
DEFAULT_ITERATIONS = 1000


def _client() -> PortalClient:
    login = require_login()
    return PortalClient(login.url, token=login.token)


@click.command("login")
@click.argument("url")
@click.option("--username", default=None, help="Your portal username (asked if not given).")
@click.option("--password-stdin", is_flag=True, help="Read the password from stdin (for scripts).")
def login(url: str, username: str | None, password_stdin: bool) -> None:
    """Log in to the portal at URL and keep an API token for the other commands."""
    if username is None:
        username = click.prompt("username", err=True)
    if password_stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        password = click.prompt("password", hide_input=True, err=True)
    with PortalClient(url) as client:
        user = client.login(username=username, password=password)
        token = client.create_token(name=f"wowlab CLI on {socket.gethostname() or 'this PC'}")
        stored = PortalLogin(url=client.url, token=token, username=user["username"])
    path = stored.save()
    click.echo(f"logged in to {stored.url} as {stored.username} (API token kept in {path})")


def _read_config(source: str) -> Any | None:
    """The config in a file (or ``-``: stdin); None if ``source`` is no file (an example)."""
    if source == "-":
        return parse_json(sys.stdin.read(MAX_CONFIG_BYTES + 1)[:MAX_CONFIG_BYTES], what="stdin")
    path = Path(source)
    if not path.is_file():
        return None
    if path.stat().st_size > MAX_CONFIG_BYTES:
        raise ConfigInvalid(f"{source} is larger than {MAX_CONFIG_BYTES // 1024 // 1024} MiB")
    try:
        return parse_json(path.read_bytes(), what=source)
    except OSError as exc:
        raise ConfigInvalid(f"cannot read {source}: {exc.strerror}") from None


def _seconds_between(start: str | None, end: str | None) -> float | None:
    if not start or not end:
        return None
    return (datetime.fromisoformat(end) - datetime.fromisoformat(start)).total_seconds()


def _wait(client: PortalClient, job: dict[str, Any], console: Console) -> dict[str, Any]:
    """Poll the job with a progress bar until it ends; returns its last state."""
    job_id = job["id"]
    with Progress(
        TextColumn(f"[bold]job {job_id}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("iterations  {task.fields[chunks]}  {task.fields[nodes]}"),
        TimeRemainingColumn(),
        console=console,
        disable=not console.is_terminal,
        transient=True,
    ) as bar:
        task = bar.add_task("job", total=job["total_iterations"], chunks="", nodes="")
        while True:
            progress = job["progress"]
            bar.update(
                task,
                completed=progress["completed_iterations"],
                total=progress["total_iterations"],
                chunks=f"chunks {progress['chunks_completed']}/{progress['chunks_total']}",
                nodes=f"nodes working {progress['nodes_working']}",
            )
            if job["status"] in FINISHED:
                return job
            time.sleep(0.25)
            job = client.job(job_id)


@click.command("submit")
@click.argument("config")
@click.option("-n", "--iterations", type=int, default=None, help="Iterations (default 1000).")
@click.option(
    "--target-error",
    type=float,
    default=None,
    help="Add iterations until the 95%% error is below this percentage of the mean.",
)
@click.option("--seed", type=int, default=None, help="Seed of the job (default: random).")
@click.option("--wait", is_flag=True, help="Show progress until it ends, then the report.")
def submit(
    config: str, iterations: int | None, target_error: float | None, seed: int | None, wait: bool
) -> None:
    """Submit CONFIG (an example's name, a JSON file, or '-' for stdin) to the portal."""
    if iterations is None and target_error is None:
        iterations = DEFAULT_ITERATIONS
    parsed = _read_config(config)
    with _client() as client:
        job = client.submit(
            example=config if parsed is None else None,
            config=parsed,
            iterations=iterations,
            target_error=target_error,
            seed=seed,
        )
        if not wait:
            click.echo(job["id"])
            return
        try:
            job = _wait(client, job, Console(stderr=True))
        except KeyboardInterrupt:
            click.echo(f"stopped waiting; job {job['id']} runs on (see 'wowlab jobs')", err=True)
            sys.exit(130)
    if job["status"] != "completed" or job["report"] is None:
        raise WowlabError(f"job {job['id']} {job['status']}: {job['error'] or 'no report'}")
    wall = _seconds_between(job["created_at"], job["finished_at"])
    timing = timing_section(job["report"], wall_seconds=wall) if wall else None
    print_report(Console(), job["report"], timing)


def _when(value: str | None) -> str:
    return datetime.fromisoformat(value).strftime("%m-%d %H:%M:%S") if value else ""


@click.command("jobs")
def jobs() -> None:
    """My jobs on the portal, newest first, with status and DPS."""
    with _client() as client:
        rows = client.jobs()
    table = Table(title=f"jobs ({len(rows)})")
    for column in ("id", "status", "iterations", "DPS", "± (95 %)", "submitted", "finished"):
        table.add_column(column, justify="right" if column != "status" else "left")
    for job in rows:
        dps = job["dps"]
        table.add_row(
            str(job["id"]),
            job["status"] + (f" ({job['error']})" if job["error"] else ""),
            f"{job['completed_iterations']:,}/{job['total_iterations']:,}",
            f"{dps['mean']:,.1f}" if dps else "",
            f"{dps['error95']:,.1f}" if dps else "",
            _when(job["created_at"]),
            _when(job["finished_at"]),
        )
    Console().print(table)


@click.command("nodes")
def nodes() -> None:
    """My nodes on the portal."""
    with _client() as client:
        rows = client.nodes()
    table = Table(title=f"nodes ({len(rows)})")
    for column in ("id", "name", "status", "max parallel", "running", "sims/s", "last seen"):
        table.add_column(column, justify="left" if column in ("name", "status") else "right")
    for node in rows:
        speed = node["sims_per_second"]
        table.add_row(
            str(node["id"]),
            node["name"],
            node["status"],
            str(node["max_parallel"]),
            str(node["leased_chunks"]),
            f"{speed:,.0f}" if speed is not None else "",
            _when(node["last_seen_at"]),
        )
    Console().print(table)


COMMANDS = (login, submit, jobs, nodes)

__all__ = ["COMMANDS", "jobs", "login", "nodes", "submit"]
