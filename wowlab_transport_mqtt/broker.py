"""What the node client and the bridge share: broker settings, paho clients, the wire format.

A broker is named by a URL: ``mqtt://host:1883`` (plain TCP) or ``mqtts://host:8883``
(TLS), optionally with ``user:password@`` and query options
(``?keepalive=30&ca_certs=/etc/ssl/ca.pem``). Keyword options given in code override the
URL. Every paho client is ``Client(CallbackAPIVersion.VERSION2)`` speaking MQTT v5, and
sets TCP_NODELAY on its socket when it connects (paho does not: without it a QoS 1 round
trip costs ~34 ms of Nagle + delayed ACK instead of ~2 ms).
"""

from __future__ import annotations

import json
import socket
import ssl
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote, urlsplit

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTProtocolVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from wowlab_core import errors
from wowlab_core.errors import InvalidRequest, WowlabError

DEFAULT_PORT = 1883
DEFAULT_TLS_PORT = 8883


@dataclass(frozen=True)
class BrokerSettings:
    """Where the broker is and how to log in; passed through to paho."""

    host: str = "127.0.0.1"
    port: int = DEFAULT_PORT
    username: str | None = None
    password: str | None = None
    #: A file holding the password (its first line), read when the client is made: keeps
    #: the password out of URLs and command lines, which other users see in ``ps``.
    password_file: str | None = None
    #: TLS on (``mqtts://`` or ``tls=True``); ``ca_certs``/``certfile``/``keyfile`` go to
    #: paho's ``tls_set``; ``tls_insecure`` skips the host name check (testing only).
    tls: bool = False
    ca_certs: str | None = None
    certfile: str | None = None
    keyfile: str | None = None
    tls_insecure: bool = False
    #: Seconds between pings; the broker sends the last will after 1.5 x this of silence.
    keepalive: int = 30
    #: How long the broker keeps a disconnected client's session (subscriptions, queued
    #: QoS 1 messages), so a short outage loses nothing.
    session_expiry: int = 300
    #: Reconnect backoff: first wait, doubled per failed attempt up to the maximum.
    reconnect_min: float = 0.25
    reconnect_max: float = 8.0

    @classmethod
    def from_url(cls, url: str, **options: Any) -> BrokerSettings:
        """Parse ``mqtt://[user[:password]@]host[:port][?option=value...]``."""
        parts = urlsplit(url or "mqtt://127.0.0.1")
        if parts.scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
            raise InvalidRequest(
                f"an MQTT broker URL starts with mqtt:// or mqtts://, got {url!r}", field="url"
            )
        tls = parts.scheme in ("mqtts", "ssl")
        try:
            port = parts.port
        except ValueError:
            raise InvalidRequest(f"bad port in {url!r}", field="url") from None
        values: dict[str, Any] = {
            "host": parts.hostname or "127.0.0.1",
            "port": port or (DEFAULT_TLS_PORT if tls else DEFAULT_PORT),
            "tls": tls,
        }
        if parts.username:
            values["username"] = unquote(parts.username)
        if parts.password:
            values["password"] = unquote(parts.password)
        values.update(dict(parse_qsl(parts.query)))
        values.update({k: v for k, v in options.items() if v is not None})
        return cls._checked(values)

    @classmethod
    def _checked(cls, values: dict[str, Any]) -> BrokerSettings:
        known = {f.name: f for f in fields(cls)}
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise InvalidRequest(f"unknown MQTT option(s): {', '.join(unknown)}", field="url")
        out: dict[str, Any] = {}
        for name, value in values.items():
            kind = str(known[name].type)
            try:
                if kind.startswith("bool"):
                    out[name] = value if isinstance(value, bool) else _truthy(str(value))
                elif kind.startswith("int"):
                    out[name] = int(value)
                elif kind.startswith("float"):
                    out[name] = float(value)
                else:
                    out[name] = None if value is None else str(value)
            except ValueError:
                raise InvalidRequest(f"MQTT option {name}: bad value {value!r}") from None
        return cls(**out)

    def with_login(self, username: str, password: str) -> BrokerSettings:
        """The same broker, logging in as ``username`` with ``password``."""
        return replace(self, username=username, password=password, password_file=None)

    def login_password(self) -> str | None:
        """The password: given, or read from ``password_file``."""
        if self.password is None and self.password_file:
            return read_password_file(self.password_file)
        return self.password

    @property
    def address(self) -> str:
        """``host:port`` for messages."""
        return f"{self.host}:{self.port}"


def _truthy(value: str) -> bool:
    if value.lower() in ("1", "true", "yes", "on"):
        return True
    if value.lower() in ("0", "false", "no", "off", ""):
        return False
    raise ValueError(value)


def read_password_file(path: str | Path) -> str:
    """A password kept in a file: its first line, without surrounding blanks."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidRequest(
            f"cannot read the MQTT password file {path}: {exc.strerror}", field="password_file"
        ) from None
    lines = text.strip().splitlines()
    password = lines[0].strip() if lines else ""
    if not password:
        raise InvalidRequest(f"the MQTT password file {path} is empty", field="password_file")
    return password


def make_client(settings: BrokerSettings, client_id: str) -> mqtt.Client:
    """A paho client (callback API 2, MQTT v5) configured from ``settings``, not connected."""
    client = mqtt.Client(
        CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=MQTTProtocolVersion.MQTTv5,
    )
    if settings.username is not None:
        client.username_pw_set(settings.username, settings.login_password())
    if settings.tls:
        client.tls_set(
            ca_certs=settings.ca_certs,
            certfile=settings.certfile,
            keyfile=settings.keyfile,
            cert_reqs=ssl.CERT_REQUIRED,
        )
        client.tls_insecure_set(settings.tls_insecure)
    # paho accepts fractions of a second here, whatever its annotation says.
    client.reconnect_delay_set(settings.reconnect_min, settings.reconnect_max)  # type: ignore[arg-type]
    return client


def _properties(packet_type: int) -> Properties:
    return Properties(packet_type)  # type: ignore[no-untyped-call]


def connect_properties(settings: BrokerSettings) -> Properties:
    """CONNECT properties: keep the session across reconnects for ``session_expiry``."""
    props = _properties(PacketTypes.CONNECT)
    props.SessionExpiryInterval = settings.session_expiry
    return props


def start(
    client: mqtt.Client,
    settings: BrokerSettings,
    *,
    clean_start: bool | Literal[3] = mqtt.MQTT_CLEAN_START_FIRST_ONLY,
) -> None:
    """Connect in paho's own thread, which also reconnects with backoff.

    ``clean_start``: by default a fresh session on the first connect and the same one on
    reconnects; ``False`` resumes the session a previous process left (the bridge's).
    """
    client.connect_async(
        settings.host,
        settings.port,
        keepalive=settings.keepalive,
        clean_start=clean_start,
        properties=connect_properties(settings),
    )
    client.loop_start()


def set_nodelay(client: mqtt.Client) -> None:
    """Turn Nagle's algorithm off on the client's socket (call in ``on_connect``)."""
    sock = client.socket()
    if isinstance(sock, socket.socket | ssl.SSLSocket):
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


def end_session_properties() -> Properties:
    """DISCONNECT properties that drop the session (a clean goodbye)."""
    props = _properties(PacketTypes.DISCONNECT)
    props.SessionExpiryInterval = 0
    return props


def publish_properties(
    *,
    correlation: bytes | None = None,
    response_topic: str | None = None,
    expiry: int | None = None,
) -> Properties:
    """PUBLISH properties for request/response."""
    props = _properties(PacketTypes.PUBLISH)
    if correlation is not None:
        props.CorrelationData = correlation
    if response_topic is not None:
        props.ResponseTopic = response_topic
    if expiry is not None:
        props.MessageExpiryInterval = max(1, int(expiry))
    return props


# --- the wire format ------------------------------------------------------------------


def encode(body: Any) -> bytes:
    """Compact JSON."""
    return json.dumps(body, separators=(",", ":")).encode("utf-8")


def decode(payload: bytes | bytearray) -> Any:
    """JSON, or :class:`InvalidRequest`."""
    try:
        return json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        raise InvalidRequest("the message is not JSON") from None


def ok_reply(result: Any) -> bytes:
    """An answer: ``{"ok": true, "result": ...}``."""
    return encode({"ok": True, "result": result})


def error_reply(exc: WowlabError) -> bytes:
    """An error answer: ``{"ok": false, "error": <type name>, "detail": ..., "field": ...}``."""
    return encode({"ok": False, **exc.to_dict()})


def error_from_reply(body: dict[str, Any]) -> WowlabError:
    """The :mod:`wowlab_core.errors` type an error answer names (``WowlabError`` if unknown)."""
    name = body.get("error")
    detail = str(body.get("detail") or name or "the bridge reported an error")
    field = body.get("field")
    cls = getattr(errors, name, None) if isinstance(name, str) else None
    if not (isinstance(cls, type) and issubclass(cls, WowlabError)):
        cls = WowlabError
    return cls(detail, field=field if isinstance(field, str) else None)


def correlation_of(message: mqtt.MQTTMessage) -> bytes | None:
    """A message's Correlation Data, if any."""
    value = getattr(message.properties, "CorrelationData", None)
    return bytes(value) if value else None


def response_topic_of(message: mqtt.MQTTMessage) -> str | None:
    """A message's Response Topic, if any."""
    value = getattr(message.properties, "ResponseTopic", None)
    return str(value) if value else None


__all__ = [
    "BrokerSettings",
    "connect_properties",
    "correlation_of",
    "decode",
    "encode",
    "end_session_properties",
    "error_from_reply",
    "error_reply",
    "make_client",
    "ok_reply",
    "publish_properties",
    "read_password_file",
    "response_topic_of",
    "set_nodelay",
    "start",
]
