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

from wowlab_core.cli.output import Table, emit, output_options
from wowlab_core.cli.render import print_report, target_error_warning
from wowlab_core.errors import ConfigInvalid, WowlabError
from wowlab_core.hashing import parse_json
from wowlab_core.report import timing_section
from wowlab_core.report_html import check_html_target, write_html_report
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


def _show_report(job: dict[str, Any], output_format: str, html_path: Path | None = None) -> None:
    """A finished job's report (an error line if it did not complete), and its HTML file."""
    if job["status"] != "completed" or job["report"] is None:
        raise WowlabError(f"job {job['id']} {job['status']}: {job['error'] or 'no report'}")
    if html_path is not None:
        write_html_report(html_path, job["report"], title=job.get("name") or None)
        click.echo(f"HTML report written to {html_path}", err=True)
    wall = _seconds_between(job["created_at"], job["finished_at"])
    timing = timing_section(job["report"], wall_seconds=wall) if wall else None
    if output_format != "json" and job.get("title"):
        click.echo(job["title"])
    print_report(Console(), job["report"], timing, output_format=output_format)
    warning = target_error_warning(job["report"])
    if warning:
        click.echo(warning, err=True)


def _wait_and_show(
    client: PortalClient, job: dict[str, Any], output_format: str, html_path: Path | None = None
) -> None:
    """Follow the job with a progress bar (Ctrl-C leaves it running), then its report."""
    try:
        job = _wait(client, job, Console(stderr=True))
    except KeyboardInterrupt:
        click.echo(
            f"stopped waiting; job {job['id']} runs on: 'wowlab jobs {job['id']} --wait' "
            "follows it again",
            err=True,
        )
        sys.exit(130)
    _show_report(job, output_format, html_path)


@click.command("submit")
@click.argument("config")
@click.option("-n", "--iterations", type=int, default=None, help="Iterations (default 1000).")
@click.option(
    "--target-error",
    type=float,
    default=None,
    help="Add iterations until the 95% error is below this percentage of the mean.",
)
@click.option("--seed", type=int, default=None, help="Seed of the job (default: random).")
@click.option("--wait", is_flag=True, help="Show progress until it ends, then the report.")
@output_options
def submit(
    config: str,
    iterations: int | None,
    target_error: float | None,
    seed: int | None,
    wait: bool,
    output_format: str,
) -> None:
    """Submit CONFIG (an example's name, a JSON file, or '-' for stdin) to the portal.

    Without --wait it prints the job's id (for scripts) on stdout and its web page on stderr.
    """
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
            name=_source_name(config) if parsed is not None else None,
        )
        url = client.job_url(job["id"])
        if not wait:
            if output_format == "json":
                data = {"id": job["id"], "status": job["status"], "url": url}
                emit("json", data=data, tables=list)
            else:
                click.echo(job["id"])
                click.echo(f"job {job['id']}: {url}", err=True)
            return
        click.echo(f"job {job['id']}: {url}", err=True)
        _wait_and_show(client, job, output_format)


def _source_name(source: str) -> str | None:
    """A config file's name without its extension, as the job's name (None for stdin)."""
    return None if source == "-" else Path(source).stem or None


def _when(value: str | None) -> str:
    """A time of the API (UTC) as "MM-DD HH:MM:SS UTC"."""
    if not value:
        return ""
    return datetime.fromisoformat(value).strftime("%m-%d %H:%M:%S") + " UTC"


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return ""
    whole = max(0, round(seconds))
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def _fight(job: dict[str, Any]) -> str | None:
    parts = []
    if job.get("fight_seconds") is not None:
        fight = f"{job['fight_seconds']:,.0f} s"
        if job.get("fight_variation"):
            fight += f" ± {job['fight_variation'] * 100:,.0f} %"
        parts.append(fight)
    if job.get("targets") is not None:
        parts.append(f"{job['targets']:,} target" + ("" if job["targets"] == 1 else "s"))
    return ", ".join(parts) or None


def _job_row(job: dict[str, Any], url: str) -> dict[str, Any]:
    dps = job.get("dps") or (job.get("report") or {}).get("dps")
    return {
        "id": job["id"],
        "name": job.get("name") or "",
        "engine": job["engine"],
        "status": job["status"] + (f" ({job['error']})" if job.get("error") else ""),
        "iterations": f"{job['completed_iterations']:,}/{job['total_iterations']:,}",
        "DPS": dps["mean"] if dps else None,
        "± (95 %)": dps["error95"] if dps else None,
        "submitted": _when(job["created_at"]),
        "took": _clock(job.get("elapsed_seconds")) if job.get("finished_at") else "",
        "page": url,
    }


def _job_details(job: dict[str, Any], url: str) -> dict[str, Any]:
    """One job, said in full: what ran, where it is, how long it took."""
    amount = (
        f"target error {job['target_error']:g} % ({job['total_iterations']:,} iterations)"
        if job.get("target_error") is not None
        else f"{job['total_iterations']:,}"
    )
    return {
        "job": job["title"],
        "name": job.get("name") or "",
        "engine": " ".join(filter(None, (job["engine"], job.get("engine_version")))),
        "iterations": amount,
        "fight": _fight(job) or "",
        "seed": job["seed"],
        "status": job["status"],
        "doing": job.get("state_text") or "",
        "done": f"{job['completed_iterations']:,}/{job['total_iterations']:,}",
        "nodes that helped": len(job.get("nodes") or []),
        "submitted": _when(job["created_at"]),
        "elapsed": _clock(job.get("elapsed_seconds")),
        "error": job.get("error") or "",
        "page": url,
    }


@click.command("jobs")
@click.argument("job_id", type=int, required=False)
@click.option("--wait", is_flag=True, help="Follow job JOB_ID until it ends, then its report.")
@click.option("--cancel", is_flag=True, help="Cancel job JOB_ID.")
@click.option(
    "--html",
    "html_path",
    type=click.Path(dir_okay=False, writable=True, path_type=Path),
    default=None,
    help="Write job JOB_ID's report as one standalone HTML file (opens offline).",
)
@output_options
def jobs(
    job_id: int | None, wait: bool, cancel: bool, html_path: Path | None, output_format: str
) -> None:
    """My jobs on the portal, newest first; or one job (its report once completed).

    Ctrl-C while waiting leaves the job running; 'wowlab jobs ID --wait' follows it again.
    """
    if job_id is None and (wait or cancel or html_path):
        raise click.UsageError("--wait, --cancel and --html need a job id: wowlab jobs ID --wait")
    if cancel and html_path:
        raise click.UsageError("give --cancel or --html, not both")
    if wait and cancel:
        raise click.UsageError("give --wait or --cancel, not both")
    if html_path is not None:
        check_html_target(html_path)
    with _client() as client:
        if job_id is None:
            rows = client.jobs()
            data = [{**job, "url": client.job_url(job["id"])} for job in rows]
            emit(
                output_format,
                data=data,
                tables=lambda: [
                    Table.from_dicts(
                        f"jobs ({len(rows)})",
                        [_job_row(job, client.job_url(job["id"])) for job in rows],
                    )
                ],
            )
            return
        url = client.job_url(job_id)
        if cancel:
            answer = client.cancel(job_id)
            what = (
                "cancelled" if answer["cancelled"] else f"not cancelled: it is {answer['status']}"
            )
            if output_format == "json":
                emit("json", data={"id": job_id, **answer, "url": url}, tables=list)
            else:
                click.echo(f"job {job_id} {what} ({url})")
            return
        job = client.job(job_id)
        if wait:
            click.echo(f"job {job_id}: {url}", err=True)
            _wait_and_show(client, job, output_format, html_path)
            return
        if job["status"] == "completed" and job.get("report") is not None:
            click.echo(f"job {job_id}: {url}", err=True)
            _show_report(job, output_format, html_path)
            return
        if html_path is not None and job["status"] in ("failed", "cancelled"):
            raise WowlabError(f"job {job_id} is {job['status']}: it has no report")
        if html_path is not None:
            raise WowlabError(
                f"job {job_id} is {job['status']}: it has no report yet "
                f"(wowlab jobs {job_id} --wait --html {html_path} waits for it)"
            )
        emit(
            output_format,
            data={**job, "url": url},
            tables=lambda: [Table.key_values(f"job {job_id}", _job_details(job, url))],
        )


@click.command("nodes")
@output_options
def nodes(output_format: str) -> None:
    """My nodes on the portal."""
    with _client() as client:
        rows = client.nodes()
    emit(
        output_format,
        data=rows,
        tables=lambda: [
            Table.from_dicts(
                f"nodes ({len(rows)})",
                [
                    {
                        "id": node["id"],
                        "name": node["name"],
                        "status": node["status"],
                        "max parallel": node["max_parallel"],
                        "running": node["leased_chunks"],
                        "sims/s": node["sims_per_second"],
                        "last seen": _when(node["last_seen_at"]),
                    }
                    for node in rows
                ],
            )
        ],
    )


COMMANDS = (login, submit, jobs, nodes)

__all__ = ["COMMANDS", "jobs", "login", "nodes", "submit"]
