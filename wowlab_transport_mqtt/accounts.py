"""Who logs in to the broker as what, and what each login may do.

Three kinds of MQTT accounts (Mosquitto dynamic-security clients), none anonymous:

- **the bridge** (``wowlab-bridge``): a random password made by ``wowlab mqtt setup-broker``;
  may use everything under ``wowlab/v1/`` and the dynamic-security control topic, through
  which it manages the node accounts. Several bridges share this account, each with its
  own client id, and share the requests through MQTT v5 shared subscriptions
  (``$share/wowlab/...``).
- **the registration identity** (``wowlab-register``): shared by every node that has no
  id yet. It may publish a registration (or an enrolment) request and read
  ``wowlab/v1/clients/<X>/reply`` for a literal ``X`` it names, never a wildcard. A node
  uses its own random 128-bit client id as ``X`` and tells it only to the bridge (in the
  request's Response Topic, a topic only the bridge can read), so no other client can
  name that topic.
- **node N** (user name ``N``): made by the bridge when N registers (or enrols), bound to
  one client id; may publish only its own requests and status and read only its own
  reply topic and inbox.

A node's MQTT password and client id are derived from its wowlab token (HMAC-SHA256 with
fixed labels), so a node needs nothing new stored and nothing but its token to log in;
the broker never sees the token itself. The bridges' client ids are derived from their
password (and each one's instance name) the same way.

Why the client ids are secrets: Mosquitto 2.0 lets any authenticated client take over the
session of any client id, whatever the user name (it compares ids only; dynamic
security's client-id binding checks the other direction: that *this* user uses *that*
id). Whoever takes over a session kicks its owner off. So the ids that matter (the
bridge's, each node's, each registering connection's) cannot be guessed.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from wowlab_transport_mqtt import topics

BRIDGE_USERNAME = "wowlab-bridge"
REGISTRATION_USERNAME = "wowlab-register"
#: The registration identity's password. Public on purpose: it lets anyone do what the
#: HTTP transport's registration endpoint lets anyone do, and nothing else. A private
#: pool can choose its own (``setup-broker --registration-password``, and the node URL
#: ``mqtt://wowlab-register:<password>@host``).
REGISTRATION_PASSWORD = "wowlab-register"

BRIDGE_ROLE = "wowlab-bridge"
REGISTRATION_ROLE = "wowlab-register"
NODE_ROLE_PREFIX = "wowlab-node-"

#: Random bytes in a registering connection's client id (hex: twice as many characters).
REGISTRATION_ID_BYTES = 16


def _derive(secret: str, label: str) -> str:
    return hmac.new(secret.encode("utf-8"), label.encode("ascii"), hashlib.sha256).hexdigest()


def node_username(node_id: int) -> str:
    """Node ``node_id``'s MQTT user name."""
    return str(node_id)


def node_password(token: str) -> str:
    """A node's MQTT password, derived from its wowlab token."""
    return _derive(token, "wowlab/v1 mqtt password")


def node_client_id(node_id: int, token: str) -> str:
    """A node's MQTT client id (bound to its account), derived from its wowlab token."""
    return f"wowlab-node-{node_id}-{_derive(token, 'wowlab/v1 mqtt client id')[:32]}"


def bridge_client_id(password: str, instance: str = "") -> str:
    """A bridge's MQTT client id, derived from its password and its instance name (each of
    several bridges has its own, stable across restarts, so each keeps its session)."""
    label = "wowlab/v1 mqtt bridge client id" + (f"/{instance}" if instance else "")
    return f"wowlab-bridge-{_derive(password, label)[:32]}"


def registration_client_id(prefix: str = "wowlab") -> str:
    """A fresh client id for a registering connection: ``<prefix>-reg-`` and 128 random bits."""
    return f"{prefix}-reg-{secrets.token_hex(REGISTRATION_ID_BYTES)}"


def node_role(node_id: int) -> str:
    """The dynamic-security role of node ``node_id``."""
    return f"{NODE_ROLE_PREFIX}{node_id}"


def node_id_of_username(username: str) -> int | None:
    """The node id a dynamic-security user name stands for, or None for other accounts."""
    if username.isascii() and username.isdigit() and len(username) <= 18:
        return int(username)
    return None


def _acl(acltype: str, topic: str, *, allow: bool = True, priority: int = 0) -> dict[str, Any]:
    return {"acltype": acltype, "topic": topic, "allow": allow, "priority": priority}


def node_acls(node_id: int) -> list[dict[str, Any]]:
    """Node ``node_id`` may send its own requests and status, and read its replies and inbox."""
    own_reply = topics.node_reply_topic(node_id)
    inbox = topics.inbox_topic(node_id)
    return [
        _acl("publishClientSend", topics.request_topic(node_id, "+")),
        _acl("publishClientSend", topics.status_topic(node_id)),
        _acl("subscribeLiteral", own_reply),
        _acl("subscribeLiteral", inbox),
        _acl("publishClientReceive", own_reply),
        _acl("publishClientReceive", inbox),
    ]


def registration_acls() -> list[dict[str, Any]]:
    """Ask to register or enrol; read a reply topic named literally, never by a wildcard."""
    any_reply = topics.registration_reply_topic("+")
    return [
        _acl("publishClientSend", topics.REGISTER),
        _acl("publishClientSend", topics.ENROLL),
        # Literal ACLs are checked before patterns: the one wildcard filter the pattern
        # below would let through is refused here.
        _acl("subscribeLiteral", any_reply, allow=False),
        _acl("subscribePattern", any_reply),
        _acl("publishClientReceive", any_reply),
    ]


def bridge_acls() -> list[dict[str, Any]]:
    """Everything under ``wowlab/v1/`` (also as the shared subscriptions of the bridges'
    group, ``$share/wowlab/...``), and managing accounts through dynamic security."""
    everything = f"{topics.PREFIX}/#"
    return [
        _acl("publishClientSend", everything),
        _acl("publishClientReceive", everything),
        _acl("subscribePattern", everything),
        _acl("subscribePattern", topics.shared(everything)),
        _acl("publishClientSend", topics.DYNSEC_CONTROL),
        _acl("publishClientReceive", topics.DYNSEC_RESPONSE),
        _acl("subscribeLiteral", topics.DYNSEC_RESPONSE),
    ]


#: Nothing is allowed unless a role says so (dynamic security's own default lets every
#: client receive everything it may subscribe to).
DEFAULT_ACL_ACCESS = {
    "publishClientSend": False,
    "publishClientReceive": False,
    "subscribe": False,
    "unsubscribe": True,
}


def node_account_commands(node_id: int, token: str) -> list[dict[str, Any]]:
    """Dynamic-security commands that create node ``node_id``'s role and client. They
    fail with "already exists" when an account is there already (see
    :func:`delete_node_account_commands`, then these again)."""
    username, role = node_username(node_id), node_role(node_id)
    return [
        {"command": "createRole", "rolename": role, "acls": node_acls(node_id)},
        {
            "command": "createClient",
            "username": username,
            "password": node_password(token),
            "clientid": node_client_id(node_id, token),
            "roles": [{"rolename": role, "priority": 0}],
        },
    ]


def delete_node_account_commands(node_id: int) -> list[dict[str, Any]]:
    """Dynamic-security commands that delete node ``node_id``'s account (and kick it)."""
    return [
        {"command": "deleteClient", "username": node_username(node_id)},
        {"command": "deleteRole", "rolename": node_role(node_id)},
    ]


__all__ = [
    "BRIDGE_USERNAME",
    "DEFAULT_ACL_ACCESS",
    "REGISTRATION_PASSWORD",
    "REGISTRATION_USERNAME",
    "bridge_acls",
    "bridge_client_id",
    "delete_node_account_commands",
    "node_account_commands",
    "node_acls",
    "node_client_id",
    "node_id_of_username",
    "node_password",
    "node_role",
    "node_username",
    "registration_acls",
    "registration_client_id",
]
