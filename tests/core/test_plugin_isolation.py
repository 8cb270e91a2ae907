"""One faulty plugin must not break the others; ``wowlab plugins`` says what is wrong and how
to fix it. The faulty plugins come from ``tests/plugin_broken_pkg`` (installed next to the
working example plugin by ``scripts/install-test-plugins``); extras that are not installed
are simulated by making their dependencies unimportable."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from wowlab_core.hookspecs import hookimpl
from wowlab_core.plugins import Hooks, build_registry, fix_for

BROKEN = {"misspelt_hook", "wrong_argument", "raises_on_register", "fails_on_import"}


def wowlab(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wowlab_core", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def without(tmp_path: Path, *modules: str) -> dict[str, str]:
    """An environment in which ``modules`` cannot be imported (as without their extra)."""
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text(
        "import sys\n" + "".join(f"sys.modules[{m!r}] = None\n" for m in modules),
        encoding="utf-8",
    )
    return {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


@pytest.fixture(scope="module")
def listed() -> dict[str, Any]:
    done = wowlab("plugins", "--json")
    assert done.returncode == 0, done.stderr
    data: dict[str, Any] = json.loads(done.stdout)
    if not {b["name"] for b in data["broken"]} >= BROKEN:
        pytest.fail(
            "the broken test plugins (tests/plugin_broken_pkg) are not installed: run "
            "scripts/install-test-plugins"
        )
    return data


def test_broken_plugins_are_listed_with_their_reason(listed: dict[str, Any]) -> None:
    broken = {b["name"]: b for b in listed["broken"]}
    assert broken["misspelt_hook"]["stage"] == "validate"
    assert broken["misspelt_hook"]["reason"] == (
        "unknown hook 'wowlab_job_finshed' (did you mean 'wowlab_job_finished'?)"
    )
    assert broken["wrong_argument"]["stage"] == "validate"
    assert broken["wrong_argument"]["reason"] == (
        "wowlab_job_finished takes 'jobb', which the hook does not pass (it passes: job)"
    )
    assert broken["raises_on_register"]["stage"] == "register"
    assert "RuntimeError: cannot read my settings file" in broken["raises_on_register"]["reason"]
    assert broken["fails_on_import"]["stage"] == "import"
    assert broken["fails_on_import"]["reason"] == "RuntimeError: this plugin is broken on purpose"
    for problem in broken.values():
        assert "WOWLAB_DISABLE_PLUGINS=" in problem["fix"] or "pip install" in problem["fix"]
    # None of them is listed as in use.
    assert not BROKEN & {p["name"] for p in listed["plugins"]}


def test_missing_dependency_fix_names_the_distribution(listed: dict[str, Any]) -> None:
    [bs4] = [u for u in listed["unavailable"] if u["name"] == "needs_bs4"]
    assert bs4["reason"] == "ModuleNotFoundError: No module named 'bs4'"
    assert bs4["fix"] == "pip install beautifulsoup4"  # from Requires-Dist, not the import


def test_plugins_shows_what_each_plugin_provides(listed: dict[str, Any]) -> None:
    plugins = {p["name"]: p for p in listed["plugins"]}
    assert plugins["engine"]["engines"] == ["numba", "reference"]
    assert plugins["engine"]["commands"] == ["engine"]
    assert plugins["wowlab_core.transport_local"]["transports"] == ["local"]
    assert plugins["mqtt"]["transports"] == ["mqtt"]
    assert plugins["example"]["engines"] == ["toy"]
    assert plugins["example"]["commands"] == ["example-hello"]
    assert set(plugins["portal"]["commands"]) >= {"up", "submit", "jobs", "login"}
    table = wowlab("plugins")
    assert table.returncode == 0 and "Traceback" not in table.stderr
    assert "engines: numba, reference" in table.stdout
    assert "Broken" in table.stdout and "misspelt_hook" in table.stdout
    assert "pip install beautifulsoup4" in table.stdout


def test_everything_else_keeps_working_next_to_broken_plugins(tmp_path: Path) -> None:
    """The acceptance: with the broken plugins installed, wowlab sim and every good
    plugin's commands work, and a broken plugin's half-registered command is not there."""
    config = tmp_path / "toy.json"
    config.write_text(json.dumps({"base_dps": 1000, "spread": 100}))
    sim = wowlab("sim", "fire_mage", "-n", "50", "--json")
    assert sim.returncode == 0 and sim.stderr == "", sim.stderr
    assert json.loads(sim.stdout)["iterations"] == 50
    toy = wowlab("sim", str(config), "--engine", "toy", "-n", "20", "--json")
    assert toy.returncode == 0, toy.stderr
    hello = wowlab("example-hello", "raider")
    assert hello.returncode == 0 and hello.stdout == "hello raider from wowlab-example-plugin\n"
    broken_command = wowlab("broken-hello")
    assert broken_command.returncode == 2 and "No such command" in broken_command.stderr


def test_a_plugin_raising_in_a_registration_hook_is_set_aside(
    wowlab_hooks: Hooks, register_plugin: Any
) -> None:
    class Faulty:
        @hookimpl
        def wowlab_register_transports(self, register: Any) -> None:
            register("half", lambda url, **kw: None)
            raise RuntimeError("config file missing")

    faulty = register_plugin(Faulty())
    transports = wowlab_hooks.transports()
    assert "local" in transports and "half" not in transports  # nothing half-registered
    [problem] = wowlab_hooks.state.problems
    assert problem.stage == "register"
    assert problem.reason == "wowlab_register_transports: RuntimeError: config file missing"
    assert not wowlab_hooks.pm.is_registered(faulty)
    assert "local" in wowlab_hooks.transports()  # and it stays out


def test_listen_refuses_a_misspelt_hook(wowlab_hooks: Hooks) -> None:
    class Typo:
        @hookimpl
        def wowlab_chunk_complete(self, chunk: Any, result: Any) -> None:
            raise AssertionError("never called")

    typo = pytest.raises(ValueError, match="did you mean 'wowlab_chunk_completed'")
    with typo, wowlab_hooks.listen(Typo()):
        pass
    registry = build_registry(load_entry_points=False)
    listener = type("L", (), {"wowlab_job_finished": hookimpl(lambda self, job: None)})()
    hooks = Hooks(registry.pm)
    with hooks.listen(listener):
        assert registry.pm.is_registered(listener)
    assert not registry.pm.is_registered(listener)


def test_fix_for_our_own_extras() -> None:
    missing = ModuleNotFoundError("No module named 'numba'", name="numba")
    assert fix_for("wowlab_engine.plugin", "wowlab", missing) == (
        "pip install 'wowlab[engine]'",
        True,
    )


def test_trace_plugins_shows_event_listeners(tmp_path: Path) -> None:
    config = tmp_path / "toy.json"
    config.write_text(json.dumps({"base_dps": 1000}))
    done = wowlab(
        "sim", str(config), "--engine", "toy", "-n", "10", "--json",
        env={"WOWLAB_TRACE_PLUGINS": "1"},
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    # The example plugin's job_finished listener, called in the event thread.
    assert "wowlab hook wowlab_job_finished -> example(job=SimJob(id=1)) [wowlab-events]" in (
        done.stderr
    )
    assert "wowlab hook wowlab_register_engines -> engine" in done.stderr


# --- extras that are not installed ---------------------------------------------------------


def test_a_command_of_a_missing_extra_names_the_pip_command(tmp_path: Path) -> None:
    env = without(tmp_path, "fastapi", "uvicorn")
    for command in ("up", "submit", "login"):
        done = wowlab(command, env=env)
        assert done.returncode == 2
        assert done.stderr.strip() == (
            f"error: `{command}` needs wowlab[portal]: pip install 'wowlab[portal]'"
        )


def test_sim_on_a_base_install_names_the_pip_command(tmp_path: Path) -> None:
    env = without(tmp_path, "numba", "numpy")
    done = wowlab("sim", "fire_mage", env=env)
    assert done.returncode == 2
    assert done.stderr.strip() == (
        "error: no such file: 'fire_mage', and no engine with example configs is installed: "
        "pip install 'wowlab[engine]'"
    )
