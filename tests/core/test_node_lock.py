"""One process per node identity (``wowlab_core.node_lock``): a second holder gets a clear
message naming the first, the lock goes with its process, and ``wowlab node run`` takes it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from wowlab_core.node_lock import NodeIdentityInUse, NodeLock, lock_path
from wowlab_core.node_settings import NodeSettings


def test_a_second_holder_is_refused_with_the_first_named(tmp_path: Path) -> None:
    settings = tmp_path / "node.json"
    with NodeLock(settings, program="wowlab gui") as first:
        assert first.held and lock_path(settings).stat().st_mode & 0o777 == 0o600
        with pytest.raises(NodeIdentityInUse) as refused:
            NodeLock(settings, program="wowlab node run").acquire()
        assert refused.value.message.startswith(
            f"this node is already running in wowlab gui (pid {os.getpid()}); stop it first"
        )
        assert str(settings) in refused.value.message
        # Another identity (another profile) is not in the way.
        with NodeLock(tmp_path / "other.json", program="wowlab node run"):
            pass
    again = NodeLock(settings, program="wowlab node run")
    again.acquire()  # released: free again
    again.release()


def test_the_lock_goes_with_its_process(tmp_path: Path) -> None:
    settings = tmp_path / "node.json"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; from pathlib import Path; from wowlab_core.node_lock import "
            "NodeLock; NodeLock(Path(sys.argv[1]), program='wowlab gui').acquire(); "
            "print('held', flush=True); time.sleep(60)",
            str(settings),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        with pytest.raises(NodeIdentityInUse, match=rf"wowlab gui \(pid {holder.pid}\)"):
            NodeLock(settings, program="test").acquire()
    finally:
        holder.kill()  # no chance to clean up: the OS drops the lock
        holder.wait(10)
    with NodeLock(settings, program="test"):
        pass


def test_node_run_refuses_an_identity_in_use_in_one_line(tmp_path: Path) -> None:
    settings = tmp_path / "node.json"
    NodeSettings(name="desk", transport="http", url="http://127.0.0.1:9").save(settings)
    before = settings.read_text()
    with NodeLock(settings, program="wowlab gui"):
        done = subprocess.run(
            [sys.executable, "-m", "wowlab_core", "node", "run", "--settings-file", str(settings),
             "--name", "renamed"],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    assert done.returncode == 1  # it ran, and another process holds the identity
    assert done.stderr.splitlines() == [
        f"error: this node is already running in wowlab gui (pid {os.getpid()}); stop it "
        f"first, or run another node with its own settings (--profile NAME); settings: {settings}"
    ]
    assert settings.read_text() == before  # the running app's settings are left alone


def test_the_desktop_apps_settings_survive_the_cli(tmp_path: Path) -> None:
    path = tmp_path / "node.json"
    NodeSettings(name="desk", gui={"cpu_limit_percent": 50, "pause_programs": ["Wow.exe"]}).save(
        path
    )
    loaded = NodeSettings.load(path)
    assert loaded is not None and loaded.gui["cpu_limit_percent"] == 50
    loaded.name = "renamed"  # what `node run --name` does
    loaded.save(path)
    again = NodeSettings.load(path)
    assert again is not None and again.gui == {
        "cpu_limit_percent": 50,
        "pause_programs": ["Wow.exe"],
    }
