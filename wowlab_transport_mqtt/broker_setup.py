"""``wowlab mqtt setup-broker``: a Mosquitto configured for wowlab, secure from the start.

It writes three files (Debian paths by default):

- the Mosquitto settings (``/etc/mosquitto/conf.d/wowlab.conf``): anonymous logins off,
  the dynamic-security plugin, a packet size limit, TCP_NODELAY;
- the dynamic-security state (``/var/lib/mosquitto/dynamic-security.json``, mode 0600,
  owned by the ``mosquitto`` user, which rewrites it whenever an account changes): the
  bridge's account with a fresh random password, the registration identity, their roles,
  and "deny" as the default for everything;
- the bridge's password (``/etc/wowlab/mqtt-bridge.password``, mode 0600) for the portal
  or ``wowlab mqtt bridge`` to read.

Passwords are stored the way the plugin stores them (PBKDF2-HMAC-SHA512, 12 bytes of
salt, 101 iterations: the plugin's own default; our passwords are random, so the hash
needs no stretching). ``examples/mosquitto.conf`` is :func:`render_conf` with the defaults.
"""

from __future__ import annotations

import base64
import glob
import hashlib
import json
import os
import pwd
import secrets
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wowlab_core.errors import InvalidRequest
from wowlab_core.private_files import write_private_text
from wowlab_transport_mqtt import accounts

#: The largest MQTT packet the broker accepts. The largest message wowlab sends is a
#: config the bridge passes to a node (configs are limited to 4 MiB); every other message
#: is a few kB. The bridge refuses much less from nodes (see BridgeOptions).
MAX_PACKET_BYTES = 8 * 1024 * 1024

DEBIAN_PLUGIN = "/usr/lib/x86_64-linux-gnu/mosquitto_dynamic_security.so"
PLUGIN_GLOBS = (
    "/usr/lib/*/mosquitto_dynamic_security.so",
    "/usr/lib/mosquitto_dynamic_security.so",
    "/usr/lib64/mosquitto_dynamic_security.so",
    "/usr/local/lib/mosquitto_dynamic_security.so",
    "/usr/local/lib/*/mosquitto_dynamic_security.so",
)

PBKDF2_ITERATIONS = 101
SALT_BYTES = 12


@dataclass(frozen=True)
class BrokerFiles:
    """Where the files go and what the broker listens on."""

    conf: Path = Path("/etc/mosquitto/conf.d/wowlab.conf")
    dynsec: Path = Path("/var/lib/mosquitto/dynamic-security.json")
    bridge_password_file: Path = Path("/etc/wowlab/mqtt-bridge.password")
    port: int = 1883
    #: None: every interface.
    bind_address: str | None = None
    plugin: str = DEBIAN_PLUGIN
    registration_password: str = accounts.REGISTRATION_PASSWORD


def find_plugin() -> str | None:
    """The path of ``mosquitto_dynamic_security.so`` on this machine, if found."""
    for pattern in PLUGIN_GLOBS:
        found = sorted(glob.glob(pattern))
        if found:
            return found[0]
    return None


def render_conf(files: BrokerFiles) -> str:
    """The Mosquitto settings, for ``conf.d`` next to Debian's own ``mosquitto.conf``
    (which already sets ``persistence``, ``persistence_location`` and ``log_dest``)."""
    listener = f"listener {files.port}" + (f" {files.bind_address}" if files.bind_address else "")
    return f"""\
# wowlab's Mosquitto settings (Mosquitto >= 2.0), written by `wowlab mqtt setup-broker`.
# Debian: this file goes to /etc/mosquitto/conf.d/; the package's mosquitto.conf already
# turns persistence on and includes this directory. See wowlab_transport_mqtt/README.md.

{listener}
# For TLS, add a second listener and give nodes mqtts://host:8883:
# listener 8883
# certfile /etc/mosquitto/certs/broker.crt
# keyfile /etc/mosquitto/certs/broker.key

# Nobody logs in without an account. Accounts live in the dynamic-security plugin: the
# bridge's, the registration identity's (public password, may only ask to register) and
# one per node, which the bridge creates when the node registers and deletes when the
# node is removed. Every topic is denied unless a role allows it.
allow_anonymous false
plugin {files.plugin}
plugin_opt_config_file {files.dynsec}

# The largest packet accepted (8 MiB: a 4 MiB config passed to a node fits; the bridge
# refuses far less from nodes, before parsing). A client that sends more is disconnected.
max_packet_size {MAX_PACKET_BYTES}

# Without it a QoS 1 request/response costs ~34 ms (Nagle + delayed ACK) instead of ~2 ms.
set_tcp_nodelay true

# Sessions and retained presence survive a broker restart (with persistence on). Mosquitto
# saves on a clean shutdown and every autosave_interval seconds; wowlab nodes resend
# unanswered requests, so a crash between saves loses nothing but time.
autosave_interval 60

# Queued messages per disconnected client (a node's answers while it reconnects).
max_queued_messages 1000
max_inflight_messages 100
"""


def _password_entry(password: str) -> dict[str, Any]:
    salt = secrets.token_bytes(SALT_BYTES)
    digest = hashlib.pbkdf2_hmac("sha512", password.encode("utf-8"), salt, PBKDF2_ITERATIONS)
    return {
        "salt": base64.b64encode(salt).decode("ascii"),
        "password": base64.b64encode(digest).decode("ascii"),
        "iterations": PBKDF2_ITERATIONS,
    }


def render_dynsec(*, bridge_password: str, registration_password: str) -> dict[str, Any]:
    """The dynamic-security plugin's state: the bridge, the registration identity, their
    roles, and deny by default."""
    return {
        "defaultACLAccess": dict(accounts.DEFAULT_ACL_ACCESS),
        "clients": [
            {
                "username": accounts.BRIDGE_USERNAME,
                # No client id binding: several bridges share this account, each with
                # its own id (derived from the password: still not guessable).
                "textname": "the wowlab bridges",
                **_password_entry(bridge_password),
                "roles": [{"rolename": accounts.BRIDGE_ROLE, "priority": 0}],
            },
            {
                "username": accounts.REGISTRATION_USERNAME,
                "textname": "nodes without an id yet (public password)",
                **_password_entry(registration_password),
                "roles": [{"rolename": accounts.REGISTRATION_ROLE, "priority": 0}],
            },
        ],
        "groups": [],
        "roles": [
            {"rolename": accounts.BRIDGE_ROLE, "acls": accounts.bridge_acls()},
            {"rolename": accounts.REGISTRATION_ROLE, "acls": accounts.registration_acls()},
        ],
    }


@dataclass(frozen=True)
class SetupResult:
    """What :func:`setup_broker` did."""

    conf: Path
    dynsec: Path | None  # None: kept as it was
    bridge_password_file: Path


def setup_broker(
    files: BrokerFiles, *, force: bool = False, owner: str | None = None
) -> SetupResult:
    """Write the settings, and (on a first run, or with ``force``) new accounts.

    ``owner``: the user the broker runs as; the dynamic-security file is given to it (the
    broker rewrites that file), when this process may do so.
    """
    if not files.registration_password:
        raise InvalidRequest(
            "the registration password cannot be empty", field="registration_password"
        )
    keep = files.dynsec.exists() and not force
    if keep and not files.bridge_password_file.exists():
        raise InvalidRequest(
            f"{files.dynsec} exists but {files.bridge_password_file} does not; "
            "use --force to make new accounts (every node then enrols again)",
            field="bridge_password_file",
        )
    files.conf.parent.mkdir(parents=True, exist_ok=True)
    files.conf.write_text(render_conf(files), encoding="utf-8")
    if keep:
        return SetupResult(files.conf, None, files.bridge_password_file)
    bridge_password = secrets.token_urlsafe(32)
    state = render_dynsec(
        bridge_password=bridge_password, registration_password=files.registration_password
    )
    write_private_text(files.dynsec, json.dumps(state, indent=2) + "\n")
    if owner is not None:
        _give_to(files.dynsec, owner)
    write_private_text(files.bridge_password_file, bridge_password + "\n")
    return SetupResult(files.conf, files.dynsec, files.bridge_password_file)


def _give_to(path: Path, owner: str) -> None:
    try:
        entry = pwd.getpwnam(owner)
    except KeyError:
        raise InvalidRequest(f"there is no user {owner!r} to own {path}", field="owner") from None
    if os.geteuid() == 0:
        os.chown(path, entry.pw_uid, entry.pw_gid)
    elif os.stat(path).st_uid != entry.pw_uid:
        raise InvalidRequest(
            f"only root can give {path} to {owner!r}; run as root or use --owner ''",
            field="owner",
        )


__all__ = [
    "MAX_PACKET_BYTES",
    "BrokerFiles",
    "SetupResult",
    "find_plugin",
    "render_conf",
    "render_dynsec",
    "setup_broker",
]
