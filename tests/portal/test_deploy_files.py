"""The shipped production layout (``deploy/``) stays true and secure by default: every
``wowlab`` command it runs exists with the options it gives, no secret has a default
value, the proxy and the broker speak TLS, only the proxy is a trusted proxy, the image
holds no secret and runs wowlab unprivileged, and docs/deploy.md's steps run in order."""

from __future__ import annotations

import os
import pwd
import re
import shlex
import subprocess
import sys
import tomllib
from functools import cache
from pathlib import Path

import yaml

from wowlab_transport_mqtt.broker import read_password_file

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMMANDS = (["portal", "serve"], ["mqtt", "bridge"], ["mqtt", "setup-broker"])


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
    command = tuple(words[:2]) if words[:2] in COMMANDS else ()
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


def test_the_image_holds_no_secret_and_runs_wowlab_unprivileged(tmp_path: Path) -> None:
    dockerfile = (DEPLOY / "Dockerfile").read_text()
    # Sources are copied by name: never the whole tree, where deploy/secrets/ lies.
    copied = [
        line.split()[1:-1] for line in dockerfile.splitlines() if line.startswith(("COPY", "ADD"))
    ]
    sources = {source for sources in copied for source in sources}
    assert "." not in sources and not any(s.startswith("deploy/secrets") for s in sources)
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    assert {p.rstrip("*") for p in packages} <= sources  # and none is missing
    ignored = (ROOT / ".dockerignore").read_text().splitlines()
    assert {"deploy/secrets/", ".git/", ".venv/"} <= set(ignored)
    assert "USER root" not in dockerfile
    # Run as wowlab, the engine caches its compiled kernels where wowlab may write (the
    # installed packages are not); without that, numba cannot load and jobs are refused.
    assert "NUMBA_CACHE_DIR=/var/lib/wowlab/" in dockerfile
    for unit in (DEPLOY / "systemd").glob("*.service"):
        text = unit.read_text()
        assert "Environment=NUMBA_CACHE_DIR=/var/lib/wowlab/" in text, unit.name
        assert "StateDirectory=wowlab" in text, unit.name

    # The entrypoint reads each secret file (mode 0600, as mounted from the host), then
    # runs the command as the unprivileged user: it cannot read the files itself.
    # (A password file is read as wowlab reads one: its first line, stripped.)
    files = (("key", "s3cret\n"), ("db", "p@ss/w\n"), ("mqtt", "\n  broker-pw \r\n\r\n"))
    for name, text in files:
        (tmp_path / name).write_text(text)
        (tmp_path / name).chmod(0o600)
    assert read_password_file(tmp_path / "mqtt") == "broker-pw"
    probe = (
        'id -u; echo "$HOME"; printf "%s|%s|%s|%s\\n" "$WOWLAB_SECRET_KEY" '
        '"$WOWLAB_DATABASE_URL" "$WOWLAB_MQTT_PASSWORD" "${WOWLAB_MQTT_PASSWORD_FILE-unset}"; '
        f"cat {tmp_path / 'key'} >/dev/null 2>&1 && echo readable || echo unreadable; "
        "grep '^NoNewPrivs:' /proc/self/status | tr -d '[:space:]'; echo"
    )
    env = {
        "PATH": os.environ["PATH"],
        "HOME": "/root",
        "WOWLAB_RUN_AS": "nobody",
        "WOWLAB_SECRET_KEY_FILE": str(tmp_path / "key"),
        "WOWLAB_DATABASE_PASSWORD_FILE": str(tmp_path / "db"),
        "WOWLAB_MQTT_PASSWORD_FILE": str(tmp_path / "mqtt"),
        "WOWLAB_DATABASE_USER": "wowlab",
        "WOWLAB_DATABASE_HOST": "postgres",
        "WOWLAB_DATABASE_NAME": "wowlab",
    }
    done = subprocess.run(
        ["sh", str(DEPLOY / "docker-entrypoint.sh"), "sh", "-c", probe],
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 0, done.stderr
    uid, home, values, access, no_new_privileges = done.stdout.splitlines()
    assert values == "s3cret|postgresql://wowlab:p%40ss%2Fw@postgres/wowlab|broker-pw|unset"
    if os.geteuid() == 0:  # as in a container: root reads, nobody runs, in its own HOME
        assert int(uid) == 65534 and access == "unreadable"
        assert home == pwd.getpwnam("nobody").pw_dir
        assert no_new_privileges == "NoNewPrivs:1"  # no way back to root (setuid)
    else:  # started as a user already: it stays that user
        assert int(uid) == os.geteuid()


def shell_lines(markdown: str) -> list[str]:
    """The lines of the ```sh blocks, in order."""
    lines, inside = [], False
    for line in markdown.splitlines():
        if line.startswith("```"):
            inside = line == "```sh"
        elif inside:
            lines.append(line.split("#")[0].strip())
    return [line for line in lines if line]


def test_the_bare_metal_steps_run_in_order_as_written() -> None:
    lines = shell_lines((ROOT / "docs" / "deploy.md").read_text())

    def first(pattern: str) -> int:
        return next(i for i, line in enumerate(lines) if re.search(pattern, line))

    # The user exists before anything is given to it.
    created = first(r"^useradd .*\bwowlab$")
    assert created < first(r"(-g|-o|chown) wowlab\b")
    # The bridges (User=wowlab) can read their broker password.
    assert first(r"setup-broker") < first(r"^chown wowlab:wowlab /etc/wowlab/mqtt-bridge\.password")
    # Mosquitto's TLS listener is added once the certificate is where it looks (else
    # the broker does not start), and the hook that puts it there is shipped.
    assert first(r"^RENEWED_LINEAGE=\S+ /etc/letsencrypt/renewal-hooks/deploy/mosquitto$") < first(
        r"wowlab-tls\.conf /etc/mosquitto/conf\.d/$"
    )
    for path in re.findall(r"(?<![\w/])deploy/[\w./@-]+", "\n".join(lines)):
        assert (ROOT / path).is_file(), path
    unit = (DEPLOY / "systemd" / "wowlab-mqtt-bridge@.service").read_text()
    assert "User=wowlab" in unit and "/etc/wowlab/mqtt-bridge.password" in unit
    # Commands are the virtualenv's (root's PATH does not have it), and they exist.
    venv = "/opt/wowlab/venv/bin/wowlab"
    commands = [shlex.split(line) for line in lines]
    run = [argv for argv in commands if "wowlab" in argv[:2] or argv[0].endswith("/wowlab")]
    assert run and all(argv[0] == venv for argv in run), run
    for argv in run:
        check_command(argv[1:])
    assert not any(line.startswith("sudo wowlab") for line in lines)
