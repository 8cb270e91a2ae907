"""The ``wowlab`` command line, run as a user runs it (a subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from wowlab_core.db import create_db_engine
from wowlab_core.migrate import current_revision, head_revision
from wowlab_core.testing.databases import fresh_postgres_database

TOY = {"base_dps": 3000, "spread": 900}


def wowlab(
    *args: str, env: dict[str, str] | None = None, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "wowlab_core", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        input=stdin,
        env={**os.environ, **(env or {})},
    )


@pytest.fixture(scope="module")
def toy_engine_installed() -> None:
    listed = json.loads(wowlab("plugins", "--json").stdout)
    if not any(p["module"] == "wowlab_example_plugin" for p in listed["plugins"]):
        pytest.fail(
            "the example plugin (tests/plugin_pkg) is not installed: run the suite through tox, "
            "or pip install -e tests/plugin_pkg"
        )


@pytest.fixture
def toy_config(tmp_path: Path) -> Path:
    path = tmp_path / "toy.json"
    path.write_text(json.dumps(TOY))
    return path


def sim_json(config: Path, *args: str) -> tuple[str, dict[str, Any]]:
    done = wowlab("sim", str(config), "--engine", "toy", "--seed", "2024", "--json", *args)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    timing = report.pop("timing")
    return json.dumps(report, sort_keys=True, indent=2), timing


@pytest.mark.usefixtures("toy_engine_installed")
def test_sim_json_is_byte_identical_however_the_job_is_cut(toy_config: Path) -> None:
    outputs = {}
    for chunks in (1, 7, 64):
        for nodes in (1, 4):
            text, timing = sim_json(
                toy_config, "--iterations", "3000", "--chunks", str(chunks), "--nodes", str(nodes)
            )
            outputs[(chunks, nodes)] = text
            assert set(timing) == {"wall_seconds", "events_per_second", "iterations_per_second"}
    assert len(set(outputs.values())) == 1, "reports differ between chunkings"
    report = json.loads(outputs[(1, 1)])
    assert report["iterations"] == 3000 and report["seed"] == 2024
    assert 2900 < report["dps"]["mean"] < 3100
    # The raw output (timing included) is the report plus exactly one extra key.
    done = wowlab(
        "sim",
        str(toy_config),
        "--engine",
        "toy",
        "--seed",
        "2024",
        "--json",
        "-n",
        "3000",
        "--nodes",
        "2",
    )
    assert set(json.loads(done.stdout)) == set(report) | {"timing"}


@pytest.mark.usefixtures("toy_engine_installed")
def test_sim_prints_a_readable_report(toy_config: Path) -> None:
    done = wowlab(
        "sim", str(toy_config), "--engine", "toy", "--seed", "1", "-n", "500", "--nodes", "2"
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("DPS ")
    assert "500 iterations, seed 1, engine toy" in done.stdout
    assert (
        "Distribution" in done.stdout
        and "Abilities" in done.stdout
        and "iterations/s" in done.stdout
    )


@pytest.mark.usefixtures("toy_engine_installed")
def test_sim_reads_stdin(toy_config: Path) -> None:
    done = wowlab(
        "sim",
        "-",
        "--engine",
        "toy",
        "--seed",
        "5",
        "-n",
        "100",
        "--json",
        stdin=toy_config.read_text(),
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["iterations"] == 100


def test_sim_refuses_a_config_over_4_mib_on_stdin() -> None:
    # Valid JSON over 4 MiB: it must be refused as too large, not cut and parsed as bad JSON.
    big = json.dumps({"base_dps": 1, "padding": "x" * (4 * 1024 * 1024)})
    done = wowlab("sim", "-", "--engine", "toy", "--json", stdin=big)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.strip() == "error: the config on stdin is larger than 4 MiB"


@pytest.mark.parametrize(
    ("args", "content", "message"),
    [
        (
            ["--engine", "toy"],
            '{"base_dps": 10,,}',
            "error: bad.json is not valid JSON: Expecting property name",
        ),
        (
            ["--engine", "toy"],
            '{"base_dps": NaN}',
            "error: bad.json is not valid JSON: NaN is not allowed at base_dps",
        ),
        (
            ["--engine", "toy"],
            '{"base_dps": 1, "nested": [0, {"x": -Infinity}]}',
            "error: bad.json is not valid JSON: -Infinity is not allowed at nested[1].x",
        ),
        (["--engine", "toy"], '{"spreed": 1}', "error: spreed: unknown field"),
        (["--engine", "simc"], "{}", "error: unknown engine 'simc'"),
        (["--engine", "toy", "-n", "0"], "{}", "error: iterations must be between 1 and"),
        (["--engine", "toy", "-n", "-4"], "{}", "error: iterations must be between 1 and"),
        (
            ["--engine", "toy", "-n", "5001", "--max-iterations", "5000"],
            "{}",
            "error: iterations must be between 1 and 5,000, got 5,001",
        ),
        (["--engine", "toy", "--nodes", "0"], "{}", "error: nodes must be between 1 and 256"),
        (
            ["--engine", "toy", "--chunks", "2", "--chunk-size", "5"],
            "{}",
            "error: give --chunk-size or --chunks, not both",
        ),
    ],
)
@pytest.mark.usefixtures("toy_engine_installed")
def test_sim_errors_are_one_line(
    tmp_path: Path, args: list[str], content: str, message: str
) -> None:
    (tmp_path / "bad.json").write_text(content)
    done = subprocess.run(
        [sys.executable, "-m", "wowlab_core", "sim", "bad.json", *args],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.startswith(message), done.stderr
    assert len(done.stderr.strip().splitlines()) == 1, done.stderr


def test_sim_unknown_config_names_the_examples(tmp_path: Path) -> None:
    done = wowlab("sim", str(tmp_path / "nope.json"))
    assert done.returncode == 2
    assert done.stderr.startswith("error: no such file or example:") and "examples:" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1


def test_plugins_lists_an_uninstalled_extra_with_its_fix(tmp_path: Path) -> None:
    # Make the engine's dependency unimportable, as on a machine without wowlab[engine].
    blocker = tmp_path / "sitecustomize.py"
    blocker.write_text("import sys\nsys.modules['numba'] = None\nsys.modules['numpy'] = None\n")
    env = {"PYTHONPATH": f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    listed = json.loads(wowlab("plugins", "--json", env=env).stdout)
    [engine] = [u for u in listed["unavailable"] if u["name"] == "engine"]
    assert engine["fix"] == "pip install 'wowlab[engine]'"
    assert "ModuleNotFoundError" in engine["reason"] or "ImportError" in engine["reason"]
    table = wowlab("plugins", env=env)
    assert table.returncode == 0 and "Traceback" not in table.stderr + table.stdout
    assert "pip install 'wowlab[engine]'" in table.stdout


def test_plugins_finds_the_third_party_plugin_and_its_command() -> None:
    listed = json.loads(wowlab("plugins", "--json").stdout)
    [example] = [p for p in listed["plugins"] if p["module"] == "wowlab_example_plugin"]
    assert example["version"] == "0.3.1" and not example["builtin"]
    assert example["hooks"] == [
        "wowlab_job_finished",
        "wowlab_register_commands",
        "wowlab_register_engines",
    ]
    hello = wowlab("example-hello", "raider")
    assert hello.returncode == 0 and hello.stdout == "hello raider from wowlab-example-plugin\n"


@pytest.mark.usefixtures("toy_engine_installed")
def test_third_party_event_hook_is_called(tmp_path: Path, toy_config: Path) -> None:
    log = tmp_path / "events.jsonl"
    done = wowlab(
        "sim",
        str(toy_config),
        "--engine",
        "toy",
        "-n",
        "50",
        "--json",
        env={"WOWLAB_EXAMPLE_PLUGIN_LOG": str(log)},
    )
    assert done.returncode == 0, done.stderr
    assert [json.loads(line)["status"] for line in log.read_text().splitlines()] == ["completed"]


def test_plugin_switches() -> None:
    off = json.loads(wowlab("plugins", "--json", env={"WOWLAB_DISABLE_PLUGINS": "example"}).stdout)
    assert all(p["name"] != "example" for p in off["plugins"])
    only = json.loads(wowlab("plugins", "--json", env={"WOWLAB_LOAD_PLUGINS": "example"}).stdout)
    assert [p["name"] for p in only["plugins"] if not p["builtin"]] == ["example"]
    assert only["unavailable"] == []
    none = json.loads(wowlab("plugins", "--json", env={"WOWLAB_DISABLE_PLUGINS": "*"}).stdout)
    assert all(p["builtin"] for p in none["plugins"])


def test_db_upgrade_on_sqlite(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'w.db'}"
    first = wowlab("db", "upgrade", "--database-url", url)
    assert first.returncode == 0 and "upgraded from empty to" in first.stdout
    again = wowlab("db", "upgrade", "--database-url", url)
    assert again.returncode == 0 and "already at revision" in again.stdout
    engine = create_db_engine(url)
    assert current_revision(engine) == head_revision(engine)
    engine.dispose()


def test_db_upgrade_on_postgres_via_environment() -> None:
    with fresh_postgres_database(schema=False) as engine:
        url = engine.url.render_as_string(hide_password=False)
        done = wowlab("db", "upgrade", env={"WOWLAB_DATABASE_URL": url})
        assert done.returncode == 0, done.stderr
        assert current_revision(engine) == head_revision(engine)
        bad = wowlab("db", "upgrade", "--database-url", "postgresql://nobody@127.0.0.1:1/none")
        assert bad.returncode == 1 and "Traceback" not in bad.stderr
        assert bad.stderr.startswith("error: cannot use the database: connection failed")
        assert len(bad.stderr.strip().splitlines()) == 1


def test_sim_with_the_default_engine_is_identical_however_the_job_is_cut() -> None:
    """The same acceptance with the real (numba) engine and a shipped example."""
    outputs = set()
    for chunks, nodes in ((1, 1), (7, 2), (64, 2)):
        done = wowlab(
            "sim",
            "fire_mage",
            "-n",
            "640",
            "--seed",
            "11",
            "--json",
            "--chunks",
            str(chunks),
            "--nodes",
            str(nodes),
            timeout=600,
        )
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        assert report.pop("timing")["events_per_second"] > 0
        assert report["engine"]["name"] == "numba" and report["iterations"] == 640
        outputs.add(json.dumps(report, sort_keys=True))
    assert len(outputs) == 1
