"""The README, followed as a new user follows it: step 1 and the whole tour, top to bottom, in a
fresh virtual environment (slow: installing the extras takes a minute or two).

Every command of the tour runs as written, with these substitutions only (they stand for
machines this test does not have):

- ``https://portal.example`` is the portal that ``wowlab up`` started; the password, which a
  person types, comes on stdin (``--username admin --password-stdin``).
- ``portal-host`` is 127.0.0.1, ``broker:1883`` a Mosquitto started for this test, and port
  8000 a free port (other tests may hold 8000).
- ``sudo wowlab mqtt setup-broker`` is not run: it writes /etc/mosquitto and /etc/wowlab on the
  machine; the test's Mosquitto was set up by the same code into a temporary directory, and its
  bridge password file stands for ``/etc/wowlab/mqtt-bridge.password``.

Commands that run until stopped (``node run``, ``up``, ``portal serve``) are started in the
background: a node is stopped with Ctrl-C once it shows its claim code; a portal keeps running
for the lines after it (``up`` then ``submit``, ``jobs``) until the next portal takes its port,
as a person with two terminals would do.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from wowlab_core.testing.databases import missing_part

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def sh_blocks(text: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", text, re.S)


def command_of(line: str) -> str | None:
    """The command of a tour line, without its comment (None for a comment line)."""
    command = re.sub(r"\s{2,}#.*$", "", line).strip()
    return command if command and not command.startswith("#") else None


def tour() -> tuple[str, str, list[str]]:
    """Step 1's command, the tour's install command, and the tour's commands."""
    text = README.read_text(encoding="utf-8")
    step1 = sh_blocks(text.split("**1. Install and run a simulation**", 1)[1])[0].strip()
    section = text.split("## A short tour", 1)[1]
    install, commands = sh_blocks(section)[:2]
    lines = [c for line in commands.splitlines() if (c := command_of(line))]
    return step1, install.strip(), lines


class Background:
    """A long-running tour command, its output collected in a file."""

    def __init__(self, command: str, env: dict[str, str], cwd: Path, log: Path) -> None:
        self.command = command
        self.log = log
        self.file = log.open("w")
        self.proc = subprocess.Popen(
            ["bash", "-c", f"exec env {command}"],
            stdout=self.file,
            stderr=subprocess.STDOUT,
            env=env,
            cwd=cwd,
        )

    @property
    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_for(self, pattern: str, timeout: float = 120) -> re.Match[str]:
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if match := re.search(pattern, self.output):
                return match
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise AssertionError(f"{self.command!r} never printed {pattern!r}:\n{self.output}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.file.close()
        assert self.proc.returncode == 0, f"{self.command!r} ended with {self.proc.returncode}"
        assert "Traceback" not in self.output, self.output


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    sys.path.insert(0, str(ROOT / "tests"))
    try:
        from mqtt.mosquitto import Broker
    finally:
        sys.path.pop(0)
    running = Broker(tmp_path / "broker")
    running.start()
    try:
        yield f"127.0.0.1:{running.port}", running.bridge_password_file
    finally:
        running.stop()


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_readme_tour_runs_top_to_bottom_in_a_fresh_venv(
    tmp_path: Path, broker: tuple[str, Path]
) -> None:
    broker_address, bridge_password_file = broker
    step1, install, commands = tour()
    assert step1.startswith("python3 -m venv .venv && .venv/bin/pip install -e '.[engine]'")
    assert install == ".venv/bin/pip install -e '.[portal,mqtt]' && . .venv/bin/activate"
    work = tmp_path / "work"
    work.mkdir()
    venv = tmp_path / "venv"
    port = str(free_port())
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("WOWLAB_", "VIRTUAL_ENV"))},
        "PATH": f"{venv / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "WOWLAB_DATA_DIR": str(tmp_path / "data"),
        "WOWLAB_CACHE_DIR": str(tmp_path / "cache"),
        "WOWLAB_PORT": port,
        "COLUMNS": "80",
        "PYTHONUNBUFFERED": "1",
    }

    def run(command: str, *, stdin: str | None = None, timeout: float = 600) -> str:
        done = subprocess.run(
            ["bash", "-c", command],
            input=stdin,
            capture_output=True,
            text=True,
            env=env,
            cwd=work,
            timeout=timeout,
        )
        output = done.stdout + done.stderr
        assert done.returncode == 0, f"{command!r} ended with {done.returncode}:\n{output}"
        assert "Traceback" not in output and "error:" not in output, f"{command!r}:\n{output}"
        return done.stdout

    # Step 1, in a fresh venv (outside the clone, which has its own .venv).
    python = "python3.11" if subprocess.run(["which", "python3.11"]).returncode == 0 else "python3"
    step = step1.replace("python3 -m venv .venv", f"{python} -m venv {venv}")
    step = step.replace(".venv/bin/", f"{venv}/bin/").replace("'.[engine]'", f"'{ROOT}[engine]'")
    report = run(step, timeout=1200)
    assert "DPS " in report and "iterations" in report
    run(
        install.replace(".venv/bin/", f"{venv}/bin/")
        .replace("'.[portal,mqtt]'", f"'{ROOT}[portal,mqtt]'")
        .replace(" && . .venv/bin/activate", ""),
        timeout=1200,
    )

    servers: list[Background] = []
    password = ""
    try:
        for number, line in enumerate(commands):
            command = (
                line.replace("portal-host:8000", f"127.0.0.1:{port}")
                .replace("--port 8000", f"--port {port}")
                .replace("broker:1883", broker_address)
                .replace("/etc/wowlab/mqtt-bridge.password", str(bridge_password_file))
            )
            if command.startswith("sudo wowlab mqtt setup-broker"):
                continue  # done by the broker fixture, into a temporary directory
            if "https://portal.example" in command:
                command = command.replace(
                    "https://portal.example",
                    f"http://127.0.0.1:{port} --username admin --password-stdin",
                )
                out = run(command, stdin=password + "\n")
                assert "logged in to" in out
                continue
            if " node run " in f" {command} ":
                node = Background(command, env, work, tmp_path / f"line{number}.log")
                node.wait_for(r"claim code: \w{3}-\w{3}")
                node.stop()
                continue
            if " portal serve" in command or " up " in f" {command} ":
                for server in servers:  # the new portal takes the port
                    server.stop()
                servers.clear()
                server = Background(command, env, work, tmp_path / f"line{number}.log")
                servers.append(server)
                if " up " in f" {command} ":
                    password = server.wait_for(r"with the password (\S+)").group(1)
                    server.wait_for(r"ready: 2 local nodes")
                else:
                    server.wait_for(r"wowlab portal on http://")
                continue
            out = run(command)
            if command.startswith("wowlab jobs 1"):
                assert "DPS " in out
    finally:
        for server in servers:
            server.stop()
    if not commands:
        missing_part("the README tour", "no commands found in README.md")
