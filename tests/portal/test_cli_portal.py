"""``wowlab up`` and the CLI against a portal, as a user runs them (subprocesses).

Issue 4's acceptance: "``wowlab up`` followed by ``wowlab submit`` of an example prints a
report within a minute on this 2-core machine."
"""

from __future__ import annotations

import os
import re
import signal
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlmodel import select

from wowlab_core.db import create_db_engine, read_session
from wowlab_core.models import Node
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
    assert re.search(r"DPS [\d,.]+ ± [\d,.]+ .* 500 iterations", done.stdout), done.stdout
    assert "Abilities" in done.stdout and "iterations/s" in done.stdout
    assert elapsed < ACCEPTANCE_SECONDS

    jobs = wowlab("jobs")
    assert jobs.returncode == 0, jobs.stderr
    assert re.search(r"│\s+1 │ completed\s+│\s+500/500 │\s+[\d,]+\.\d", jobs.stdout), jobs.stdout
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
    assert bad.returncode == 2
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
    assert jobs.returncode == 2
    assert jobs.stderr.splitlines() == [
        "error: not logged in to a portal: run 'wowlab login URL' (or 'wowlab up' for a local one)"
    ]
    port = free_port()
    down = wowlab("login", f"http://127.0.0.1:{port}", "--username", "x", "--password-stdin",
                  stdin="whatever1\n")  # fmt: skip
    assert down.returncode == 2
    [line] = down.stderr.splitlines()
    assert line.startswith(f"error: cannot reach the portal at http://127.0.0.1:{port}: ")
