"""``wowlab mqtt setup-broker`` and the bridge's password: files, modes, clear errors."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from wowlab_core.cli import cli
from wowlab_transport_mqtt import accounts, broker_setup
from wowlab_transport_mqtt.broker_setup import BrokerFiles, render_conf
from wowlab_transport_mqtt.plugin import wowlab_register_commands

EXAMPLE = Path(__file__).parents[2] / "wowlab_transport_mqtt" / "examples" / "mosquitto.conf"


@pytest.fixture(scope="module", autouse=True)
def mqtt_commands() -> None:
    wowlab_register_commands(cli)


def setup(tmp_path: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        cli,
        [
            "mqtt",
            "setup-broker",
            "--conf",
            str(tmp_path / "conf.d" / "wowlab.conf"),
            "--dynsec",
            str(tmp_path / "dynsec.json"),
            "--bridge-password-file",
            str(tmp_path / "etc" / "bridge.password"),
            "--plugin",
            "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so",
            "--owner",
            "",
            *extra,
        ],
    )
    return result.exit_code, result.output


def test_the_shipped_example_is_what_setup_broker_writes() -> None:
    shipped = EXAMPLE.read_text()
    assert shipped == render_conf(BrokerFiles())
    lines = {line.split()[0]: line for line in shipped.splitlines() if line and line[0] != "#"}
    assert lines["allow_anonymous"] == "allow_anonymous false"
    assert lines["plugin"].endswith("mosquitto_dynamic_security.so")
    assert lines["max_packet_size"] == f"max_packet_size {8 * 1024 * 1024}"
    assert "acl_file" not in lines and "password_file" not in lines


def test_setup_broker_writes_private_accounts_once(tmp_path: Path) -> None:
    code, out = setup(tmp_path, "--port", "1999", "--bind-address", "10.0.0.1")
    assert code == 0, out
    conf = (tmp_path / "conf.d" / "wowlab.conf").read_text()
    assert "listener 1999 10.0.0.1\n" in conf
    assert f"plugin_opt_config_file {tmp_path / 'dynsec.json'}\n" in conf
    dynsec, password_file = tmp_path / "dynsec.json", tmp_path / "etc" / "bridge.password"
    for secret in (dynsec, password_file):
        assert stat.S_IMODE(secret.stat().st_mode) == 0o600, secret
    password = password_file.read_text().strip()
    assert len(password) >= 40
    state = json.loads(dynsec.read_text())
    assert password not in dynsec.read_text()  # only its salted hash
    assert state["defaultACLAccess"] == {
        "publishClientSend": False,
        "publishClientReceive": False,
        "subscribe": False,
        "unsubscribe": True,
    }
    clients = {c["username"]: c for c in state["clients"]}
    assert set(clients) == {"wowlab-bridge", "wowlab-register"}
    # Several bridges share the account, each with its own (secret, derived) client id.
    assert "clientid" not in clients["wowlab-bridge"]
    assert accounts.bridge_client_id(password, "1") != accounts.bridge_client_id(password, "2")
    assert "clientid" not in clients["wowlab-register"]  # each registering node picks one
    # A second run keeps the accounts (every node's account lives in that file).
    code, out = setup(tmp_path, "--port", "2000")
    assert code == 0 and "kept" in out
    assert password_file.read_text().strip() == password
    assert "listener 2000\n" in (tmp_path / "conf.d" / "wowlab.conf").read_text()
    # --force starts over.
    code, out = setup(tmp_path, "--force")
    assert code == 0, out
    assert password_file.read_text().strip() != password


def test_setup_broker_errors_are_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    code, out = setup(tmp_path)
    assert code == 0
    (tmp_path / "etc" / "bridge.password").unlink()
    code, out = setup(tmp_path)
    assert code == 1 and "use --force" in out and len(out.strip().splitlines()) == 1
    monkeypatch.setattr(broker_setup, "PLUGIN_GLOBS", ())
    result = CliRunner().invoke(
        cli, ["mqtt", "setup-broker", "--conf", str(tmp_path / "c"), "--owner", ""]
    )
    assert result.exit_code == 1 and "mosquitto_dynamic_security.so not found" in result.output
    code, out = setup(tmp_path / "other", "--owner", "no-such-user-here")
    assert code == 1 and "no user 'no-such-user-here'" in out


def test_the_bridge_needs_a_password_and_never_on_its_command_line(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WOWLAB_MQTT_")}
    for args, expected in [
        ([], "needs its broker password"),
        (["--url", "mqtt://wowlab-bridge:secret@127.0.0.1:1"], "not in the URL"),
        (["--password-file", str(tmp_path / "missing")], "cannot read the MQTT password file"),
    ]:
        done = subprocess.run(
            [sys.executable, "-m", "wowlab_core", "mqtt", "bridge", *args],
            capture_output=True,
            text=True,
            env={**env, "WOWLAB_DATA_DIR": str(tmp_path)},
            timeout=60,
        )
        assert done.returncode != 0, done
        assert expected in done.stderr and "Traceback" not in done.stderr, done.stderr
