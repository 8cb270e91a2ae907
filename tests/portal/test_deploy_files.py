"""The shipped production layout (``deploy/``) stays true and secure by default: every
``wowlab`` command it runs exists with the options it gives, no secret has a default
value, the proxy and the broker speak TLS, and only the proxy is a trusted proxy."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from functools import cache
from pathlib import Path

import yaml

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


@cache
def help_of(*command: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "wowlab_core", *command, "--help"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def check_command(argv: list[str]) -> None:
    """``argv`` (after ``wowlab``) names a real command, and each option exists."""
    words = [a for a in argv if not a.startswith("-")]
    command = tuple(words[:2]) if words[:2] in (["portal", "serve"], ["mqtt", "bridge"]) else ()
    assert command, f"unexpected command {argv}"
    text = help_of(*command)
    for option in (a.split("=")[0] for a in argv if a.startswith("--")):
        assert re.search(rf"(^|\s){re.escape(option)}\b", text), f"{option} of {argv}"


def wowlab_commands() -> list[list[str]]:
    found = []
    for unit in (DEPLOY / "systemd").glob("*.service"):
        for line in unit.read_text().splitlines():
            if line.startswith("ExecStart="):
                argv = shlex.split(line.removeprefix("ExecStart="))
                assert argv[0].endswith("/wowlab")
                found.append([a.replace("%i", "1") for a in argv[1:]])
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    for service in compose["services"].values():
        command = service.get("command")
        if command and command[0] == "wowlab":
            found.append(command[1:])
    return found


def test_every_wowlab_command_of_the_layout_exists() -> None:
    commands = wowlab_commands()
    assert len(commands) >= 4  # portal and bridge units, portal and two bridges in compose
    for argv in commands:
        check_command(argv)
    assert any("--workers" in argv for argv in commands)
    assert sum("--instance" in argv for argv in commands) >= 2


def test_no_secret_has_a_default_and_every_link_is_encrypted() -> None:
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    # Secrets come from files made by make-secrets, never from values in the file.
    for name, service in compose["services"].items():
        for key, value in (service.get("environment") or {}).items():
            if re.search(r"PASSWORD|SECRET|TOKEN", key):
                assert key.endswith("_FILE") and value.startswith("/run/secrets/"), (name, key)
    assert all(set(v) == {"file"} for v in compose["secrets"].values())
    assert set(compose["secrets"]) >= {"postgres_password", "portal_secret_key"}
    # Only Caddy is believed about client addresses, and it has that fixed address.
    portal = compose["services"]["portal"]["environment"]
    caddy_ip = compose["services"]["caddy"]["networks"]["default"]["ipv4_address"]
    assert portal["WOWLAB_TRUSTED_PROXIES"] == caddy_ip
    assert portal["WOWLAB_HTTPS_ONLY"] == "true"
    # PostgreSQL is not published; nodes reach Mosquitto on its TLS port only.
    assert "ports" not in compose["services"]["postgres"]
    assert compose["services"]["mosquitto"]["ports"] == ["8883:8883"]
    assert "listener 8883" in (DEPLOY / "mosquitto" / "wowlab-tls.conf").read_text()
    toml = (DEPLOY / "portal.toml.example").read_text()
    assert re.search(r"^https_only = true$", toml, re.M)
    assert re.search(r'^trusted_proxies = \["127\.0\.0\.1"\]$', toml, re.M)
    assert not re.search(r"^(secret_key|metrics_token)\s*=", toml, re.M)  # no shared default
    assert "@" not in re.search(r'^database_url = "(.*)"$', toml, re.M).group(1).split("//")[
        1
    ].split("/")[0].replace("wowlab@", "")  # type: ignore[union-attr]
    # The proxies: TLS for the public name, HTTP only to redirect.
    caddy = (DEPLOY / "Caddyfile").read_text()
    assert re.search(r"^portal\.example\.org \{", caddy, re.M) and "http://" not in caddy
    nginx = (DEPLOY / "nginx.conf").read_text()
    assert "listen 443 ssl;" in nginx and "return 301 https://" in nginx
    assert "proxy_set_header X-Forwarded-For $remote_addr;" in nginx
    bridge = (DEPLOY / "systemd" / "wowlab-mqtt-bridge@.service").read_text()
    assert "--url mqtts://" in bridge and "WOWLAB_MQTT_PASSWORD_FILE=" in bridge
