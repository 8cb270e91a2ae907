"""``wowlab up`` and the CLI against a portal, as a user runs them (subprocesses).

Issue 4's acceptance: "``wowlab up`` followed by ``wowlab submit`` of an example prints a
report within a minute on this 2-core machine."
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import anyio
import pytest
from sqlmodel import select

from wowlab_core.db import create_db_engine, read_session
from wowlab_core.http_client import HttpTransport
from wowlab_core.models import Node
from wowlab_core.testing.conformance import TOY_CONFIG, complete_all, registered_node
from wowlab_core.testing.processes import WowlabProcess as Process
from wowlab_portal.login_store import FILE_NAME, PortalLogin

from .conftest import Portal, make_account
from .test_cli import free_port, processes  # noqa: F401  (processes: a fixture)

ACCEPTANCE_SECONDS = 60.0


def wowlab(
    *args: str, stdin: str | None = None, timeout: float = 90
) -> subprocess.CompletedProcess[str]:
    """Run ``wowlab ARGS`` to the end (data directory: this test's, from the environment)."""
    return subprocess.run(
        [sys.executable, "-m", "wowlab_core", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200"},
    )


def ctrl_c(process: Process) -> int:
    """SIGINT, as Ctrl-C in a terminal; the exit code."""
    process.proc.send_signal(signal.SIGINT)
    return process.proc.wait(60)


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def data_dir(monkeypatch: pytest.MonkeyPatch) -> Path:
    """This test's data directory (the autouse fixture's), and no database URL from outside."""
    monkeypatch.delenv("WOWLAB_DATABASE_URL", raising=False)
    return Path(os.environ["WOWLAB_DATA_DIR"])


def test_up_then_submit_prints_a_report_within_a_minute(
    data_dir: Path,
    processes: list[Process],  # noqa: F811
) -> None:
    port = free_port()
    started = time.monotonic()
    up = Process("up", "--nodes", "2", "--port", str(port))
    processes.append(up)
    password = up.wait_for(r"made the account 'admin' with the password (\S+)").group(1)
    up.wait_for(r"ready: 2 local nodes claimed by admin")
    done = wowlab("submit", "fire_mage", "--iterations", "500", "--wait")
    elapsed = time.monotonic() - started
    print(f"wowlab up -> report printed by wowlab submit --wait: {elapsed:.1f} s")
    assert done.returncode == 0, done.stderr + up.output
    assert re.search(r"DPS [\d,.]+ ± [\d,.]+ .*\n500 iterations", done.stdout), done.stdout
    assert "Abilities" in done.stdout and "iterations/s" in done.stdout
    assert elapsed < ACCEPTANCE_SECONDS

    jobs = wowlab("jobs")
    assert jobs.returncode == 0, jobs.stderr
    row = r"│\s+1 │ fire_mage │ numba\s+│ completed\s+│ 500/500\s+│\s+[\d,]+\.\d"
    assert re.search(row, jobs.stdout), jobs.stdout
    one = wowlab("jobs", "1")  # a completed job: what ran, then its report
    assert one.stdout.startswith("fire_mage · numba · 500 iterations\n"), one.stdout
    nodes = wowlab("nodes")
    assert nodes.returncode == 0, nodes.stderr
    assert len(re.findall(r"local-\d │ online", nodes.stdout)) == 2, nodes.stdout
    # Without --wait: the job's id, for scripts.
    queued = wowlab("submit", "fire_mage", "--iterations", "100", "--seed", "3")
    assert queued.returncode == 0 and queued.stdout.strip() == "2", queued.stderr

    assert ctrl_c(up) == 0, up.output
    up.wait_for("wowlab stopped")
    assert mode(data_dir / FILE_NAME) == 0o600
    assert all(mode(p) == 0o600 for p in (data_dir / "up").glob("node-*.json"))
    db = create_db_engine(f"sqlite:///{data_dir / 'wowlab.db'}")
    try:
        with read_session(db) as session:
            stored = session.exec(select(Node)).all()
        assert sorted(n.status for n in stored) == ["offline", "offline"]  # said goodbye
    finally:
        db.dispose()

    # Again: the same nodes and login come back; the password is not shown a second time.
    again = Process("up", "--nodes", "2", "--port", str(port))
    processes.append(again)
    again.wait_for(r"ready: 2 local nodes")
    assert password not in again.output and "password shown on the first run" in again.output
    nodes = wowlab("nodes")
    assert len(re.findall(r"local-\d │ online", nodes.stdout)) == 2, nodes.stdout
    assert "nodes (2)" in nodes.stdout
    login = wowlab("login", f"http://127.0.0.1:{port}", "--username", "admin", "--password-stdin",
                   stdin=password + "\n")  # fmt: skip
    assert login.returncode == 0, login.stderr
    assert ctrl_c(again) == 0, again.output


def test_login_stores_a_token_and_a_bad_login_is_one_error_line(
    portal: Portal, data_dir: Path
) -> None:
    make_account(portal.coordinator.db, "ana", "correct horse battery")
    bad = wowlab("login", portal.url, "--username", "ana", "--password-stdin", stdin="wrong!!!\n")
    assert bad.returncode == 1
    assert bad.stderr.splitlines() == ["error: wrong username or password"]
    assert not (data_dir / FILE_NAME).exists()

    good = wowlab(
        "login",
        portal.url,
        "--username",
        "ana",
        "--password-stdin",
        stdin="correct horse battery\n",
    )
    assert good.returncode == 0, good.stderr
    assert f"logged in to {portal.url} as ana" in good.stdout
    assert mode(data_dir / FILE_NAME) == 0o600
    stored = PortalLogin.load(data_dir / FILE_NAME)
    assert stored is not None and stored.url == portal.url and stored.token.startswith("wl_")
    jobs = wowlab("jobs")
    assert jobs.returncode == 0 and "jobs (0)" in jobs.stdout, jobs.stderr

    unknown = wowlab("submit", "no_such_example")
    assert unknown.returncode == 2
    [line] = unknown.stderr.splitlines()
    assert line.startswith("error: no example 'no_such_example' (examples: ")


def test_without_a_login_or_a_portal_the_errors_are_one_line(data_dir: Path) -> None:
    jobs = wowlab("jobs")
    assert jobs.returncode == 1
    assert jobs.stderr.splitlines() == [
        "error: not logged in to a portal: run 'wowlab login URL' (or 'wowlab up' for a local one)"
    ]
    port = free_port()
    down = wowlab("login", f"http://127.0.0.1:{port}", "--username", "x", "--password-stdin",
                  stdin="whatever1\n")  # fmt: skip
    assert down.returncode == 1
    [line] = down.stderr.splitlines()
    assert line.startswith(f"error: cannot reach the portal at http://127.0.0.1:{port}: ")


def _run_every_chunk(portal: Portal, owner: str) -> None:
    """A node of ``owner`` (claimed through the database) runs every pending chunk."""

    async def work() -> None:
        transport = HttpTransport(portal.url)
        try:
            creds = await registered_node(portal.harness, transport, owner=owner)
            while leases := await transport.lease(creds, 10):
                await complete_all(transport, creds, leases)
        finally:
            await transport.aclose()

    anyio.run(work)


def test_jobs_shows_follows_and_cancels_one_job(
    portal: Portal, data_dir: Path, tmp_path: Path
) -> None:
    make_account(portal.coordinator.db, "ana", "correct horse battery")
    login = wowlab("login", portal.url, "--username", "ana", "--password-stdin",
                   stdin="correct horse battery\n")  # fmt: skip
    assert login.returncode == 0, login.stderr
    config = tmp_path / "toy.json"
    config.write_text(json.dumps(TOY_CONFIG))

    submitted = wowlab("submit", str(config), "-n", "40", "--seed", "5")
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip()  # the bare id, for scripts
    page = f"{portal.url}/jobs/{job_id}"
    assert submitted.stderr.strip() == f"job {job_id}: {page}"
    pending = wowlab("jobs", job_id)
    assert pending.returncode == 0 and "pending" in pending.stdout and page in pending.stdout
    # Named by its file (the config has no name); the details say why it waits.
    assert "toy · toy · 40 iterations" in pending.stdout, pending.stdout
    assert "waiting for a node: no node you can use is online" in pending.stdout

    follower = Process("jobs", job_id, "--wait")
    try:
        time.sleep(0.5)
        _run_every_chunk(portal, "ana")
        assert follower.proc.wait(60) == 0, follower.output
    finally:
        follower.kill()
    assert re.search(r"DPS [\d,.]+ ± [\d,.]+", follower.output), follower.output
    assert "40 iterations, seed 5, engine toy" in follower.output
    html = tmp_path / "job.html"
    shown = wowlab("jobs", job_id, "--format", "json", "--html", str(html))
    report = json.loads(shown.stdout)
    assert report["iterations"] == 40  # a completed job: its report
    assert f"HTML report written to {html}" in shown.stderr
    written = html.read_text(encoding="utf-8")
    assert f'<strong id="dps-mean">{report["dps"]["mean"]:,}</strong>' in written
    assert f'id="dps-median">{report["dps"]["median"]:,}<' in written
    assert report["job"]["title"] == "toy · toy · 40 iterations"

    listed = json.loads(wowlab("jobs", "--json").stdout)
    assert [(j["id"], j["url"]) for j in listed] == [(int(job_id), page)]

    second = wowlab("submit", str(config), "-n", "40").stdout.strip()
    cancelled = wowlab("jobs", second, "--cancel")
    assert cancelled.returncode == 0
    assert cancelled.stdout.strip() == f"job {second} cancelled ({portal.url}/jobs/{second})"
    again = wowlab("jobs", second, "--cancel")
    assert "not cancelled: it is cancelled" in again.stdout
    no_report = wowlab("jobs", second, "--html", str(tmp_path / "none.html"))
    assert no_report.returncode == 1
    assert no_report.stderr.splitlines() == [f"error: job {second} is cancelled: it has no report"]
    assert not (tmp_path / "none.html").exists()
    usage = wowlab("jobs", "--wait")
    assert usage.returncode == 2
    assert usage.stderr.startswith("error: --wait, --cancel and --html need a job id")


def test_node_run_with_a_wrong_url_path_is_one_line(portal: Portal, tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "wowlab_core", "node", "run", "--transport", "http",
         "--url", f"{portal.url}/wowlab", "--settings-file", str(tmp_path / "node.json")],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"error: no wowlab node API at {portal.url}/wowlab/api/v1/node/register: give the "
        "portal's address without a path (such as http://host:8000)"
    ]
