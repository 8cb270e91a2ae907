"""wowlab over MQTT: the node-side transport ``mqtt`` and the portal-side bridge.

Nodes and the bridge talk through a broker the self-hoster runs (Mosquitto, EMQX,
HiveMQ): MQTT v5 request/response for every node operation, a retained status topic with a
last will for presence, and an inbox per node for pushed wake-ups. Topics are listed in
:mod:`wowlab_transport_mqtt.topics` and the package's README.
"""

from __future__ import annotations

__all__: list[str] = []
