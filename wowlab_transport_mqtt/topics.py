"""The topics of wowlab over MQTT (all under ``wowlab/v1/``).

====================================  =========  ==========================================
topic                                 direction  what
====================================  =========  ==========================================
``wowlab/v1/register``                node->br.  register a new node (no token yet)
``wowlab/v1/enroll``                  node->br.  (re)create node ``id``'s MQTT account
``wowlab/v1/clients/{client}/reply``  br.->node  answers to those two, to the request's
                                                 Response Topic, with its Correlation Data
``wowlab/v1/nodes/{id}/req/{op}``     node->br.  a request of node ``id``: ``claim_status``,
                                                 ``heartbeat``, ``lease``, ``config``,
                                                 ``complete``, ``fail``, ``release``,
                                                 ``offline``
``wowlab/v1/nodes/{id}/reply``        br.->node  answers to node ``id``'s requests
``wowlab/v1/nodes/{id}/status``       node->br.  retained ``online``; last will ``offline``
``wowlab/v1/nodes/{id}/inbox``        br.->node  pushes: ``{"type": "work"}``
====================================  =========  ==========================================

Who may use which topic is in :mod:`wowlab_transport_mqtt.accounts`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PREFIX = "wowlab/v1"
REGISTER = f"{PREFIX}/register"
ENROLL = f"{PREFIX}/enroll"
#: Mosquitto's dynamic-security plugin: commands in, answers out.
DYNSEC_CONTROL = "$CONTROL/dynamic-security/v1"
DYNSEC_RESPONSE = "$CONTROL/dynamic-security/v1/response"
#: The shared-subscription group of the bridges: the broker hands each request to one
#: of the bridges connected (MQTT v5 ``$share/<group>/<filter>``).
SHARE_GROUP = "wowlab"


def shared(topic_filter: str) -> str:
    """``topic_filter`` as a subscription of the bridges' shared group."""
    return f"$share/{SHARE_GROUP}/{topic_filter}"


#: What the bridge subscribes to: requests shared among the bridges (each goes to one),
#: presence and account answers to every bridge.
BRIDGE_SUBSCRIPTIONS = (
    shared(REGISTER),
    shared(ENROLL),
    shared(f"{PREFIX}/nodes/+/req/+"),
    f"{PREFIX}/nodes/+/status",
    DYNSEC_RESPONSE,
)

#: The node operations that have a request topic (``register`` has its own).
NODE_OPS = frozenset(
    {"claim_status", "heartbeat", "lease", "config", "complete", "fail", "release", "offline"}
)

ONLINE = b"online"
OFFLINE = b"offline"

_NODE_TOPIC = re.compile(rf"^{PREFIX}/nodes/(\d{{1,18}})/(req/([a-z_]+)|status)$")
_REPLY_TOPIC = re.compile(rf"^{PREFIX}/clients/[A-Za-z0-9_.\-]{{1,64}}/reply$")


def request_topic(node_id: int, op: str) -> str:
    """Where node ``node_id`` publishes its ``op`` requests."""
    return f"{PREFIX}/nodes/{node_id}/req/{op}"


def status_topic(node_id: int) -> str:
    """Node ``node_id``'s retained presence."""
    return f"{PREFIX}/nodes/{node_id}/status"


def inbox_topic(node_id: int) -> str:
    """Where the bridge pushes wake-ups to node ``node_id``."""
    return f"{PREFIX}/nodes/{node_id}/inbox"


def node_reply_topic(node_id: int) -> str:
    """Where node ``node_id`` receives the answers to its requests."""
    return f"{PREFIX}/nodes/{node_id}/reply"


def registration_reply_topic(client_id: str) -> str:
    """Where the registering connection ``client_id`` receives its answers."""
    return f"{PREFIX}/clients/{client_id}/reply"


def is_registration_reply_topic(topic: str) -> bool:
    """Whether ``topic`` is a well-formed registration reply topic (no wildcards)."""
    return bool(_REPLY_TOPIC.match(topic))


@dataclass(frozen=True)
class Parsed:
    """What a topic the bridge receives on means."""

    kind: str  # "register", "enroll", "request" or "status"
    node_id: int | None = None
    op: str | None = None


def parse(topic: str) -> Parsed | None:
    """Parse a topic the bridge subscribes to; None for anything else."""
    if topic == REGISTER:
        return Parsed("register")
    if topic == ENROLL:
        return Parsed("enroll")
    m = _NODE_TOPIC.match(topic)
    if m is None:
        return None
    node_id = int(m.group(1))
    if m.group(3) is not None:
        return Parsed("request", node_id, m.group(3))
    return Parsed("status", node_id)


__all__ = [
    "BRIDGE_SUBSCRIPTIONS",
    "DYNSEC_CONTROL",
    "DYNSEC_RESPONSE",
    "ENROLL",
    "NODE_OPS",
    "OFFLINE",
    "ONLINE",
    "PREFIX",
    "REGISTER",
    "SHARE_GROUP",
    "Parsed",
    "inbox_topic",
    "is_registration_reply_topic",
    "node_reply_topic",
    "parse",
    "registration_reply_topic",
    "request_topic",
    "shared",
    "status_topic",
]
