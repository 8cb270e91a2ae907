"""Real ``wowlab`` processes for tests: started, watched line by line, stopped.

Tests of nodes and portals run the command line as a user does (``wowlab node run ...``,
``wowlab up``) and wait for what it prints, such as the claim code.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path


class WowlabProcess:
    """``python -m wowlab_core ARGS...`` in a subprocess, its output collected by a thread."""

    def __init__(
        self, *args: str, env: dict[str, str] | None = None, launcher: list[str] | None = None
    ) -> None:
        # ``launcher``: what runs instead of ``-m wowlab_core`` (a script that wraps the CLI).
        self.proc = subprocess.Popen(
            [sys.executable, *(launcher or ["-m", "wowlab_core"]), *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "200", **(env or {})},
        )
        self.lines: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            self.lines.append(line.rstrip("\n"))

    @property
    def output(self) -> str:
        """Everything printed so far."""
        return "\n".join(self.lines)

    def wait_for(self, pattern: str, timeout: float = 60) -> re.Match[str]:
        """The first printed line matching ``pattern``; fails with the output if none comes."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for line in list(self.lines):
                if m := re.search(pattern, line):
                    return m
            if self.proc.poll() is not None:
                time.sleep(0.2)  # the reader thread may still hold the last lines
                for line in list(self.lines):
                    if m := re.search(pattern, line):
                        return m
                break
            time.sleep(0.05)
        raise AssertionError(f"never printed {pattern!r}; output:\n{self.output}")

    def claim_code(self, timeout: float = 60) -> str:
        """The claim code a node prints (``ABC-234``)."""
        return self.wait_for(r"claim code: (\w{3}-\w{3})", timeout).group(1)

    def terminate(self, timeout: float = 30) -> int:
        """SIGTERM, then the exit code (killed if it does not stop in time)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL, and reap the process."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


def node_process(
    transport: str,
    url: str,
    settings_file: Path,
    name: str,
    *,
    max_parallel: int = 1,
    env: dict[str, str] | None = None,
    verbose: bool = False,
    launcher: list[str] | None = None,
    args: tuple[str, ...] = (),
) -> WowlabProcess:
    """``wowlab node run`` with its own settings file (and more options in ``args``)."""
    return WowlabProcess(
        *(["-v"] if verbose else []),
        "node",
        "run",
        "--transport",
        transport,
        "--url",
        url,
        "--name",
        name,
        "--max-parallel",
        str(max_parallel),
        "--settings-file",
        str(settings_file),
        *args,
        env=env,
        launcher=launcher,
    )


__all__ = ["WowlabProcess", "node_process"]
