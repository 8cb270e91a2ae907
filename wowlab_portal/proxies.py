"""Which address a request comes from, behind reverse proxies the operator trusts.

``X-Forwarded-For`` is only a claim: anyone can send it. It is honoured only when the
peer that sent it is one of ``WOWLAB_TRUSTED_PROXIES`` (none by default), and then read
from the right, skipping trusted proxies, so a client cannot prepend an address of its
choice. Per-address limits (logins, sign-ups, node registrations, claims) key on the
result; the uvicorn the portal runs has its own proxy handling turned off.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Receive, Scope, Send

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_networks(entries: Iterable[str]) -> list[Network]:
    """Addresses and CIDR blocks (``10.0.0.5``, ``192.168.0.0/16``, ``::1``).

    Raises:
        ValueError: an entry that is neither, naming it.
    """
    networks = []
    for entry in entries:
        text = entry.strip()
        if not text:
            continue
        try:
            networks.append(ipaddress.ip_network(text, strict=False))
        except ValueError:
            raise ValueError(f"{text!r} is not an IP address or CIDR block") from None
    return networks


def _trusted(address: str, networks: list[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def forwarded_client(peer: str, forwarded_for: str, networks: list[Network]) -> str:
    """The client's address: ``peer``, or, when ``peer`` is a trusted proxy, the rightmost
    address of ``X-Forwarded-For`` that is not a trusted proxy."""
    if not networks or not _trusted(peer, networks):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, networks):
            return hop
    return hops[0] if hops else peer


class TrustedProxies:
    """ASGI middleware: put the real client address (and scheme) in the scope when the
    request came through a trusted proxy; leave the scope alone otherwise."""

    def __init__(self, app: ASGIApp, *, networks: list[Network]) -> None:
        self.app = app
        self.networks = networks

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        client = scope.get("client")
        if scope["type"] == "http" and self.networks and client:
            peer = client[0]
            if _trusted(peer, self.networks):
                headers = Headers(scope=scope)
                forwarded = ",".join(headers.getlist("x-forwarded-for"))
                scope = dict(scope)
                scope["client"] = (forwarded_client(peer, forwarded, self.networks), 0)
                proto = headers.get("x-forwarded-proto", "").split(",")[-1].strip().lower()
                if proto in ("http", "https"):
                    scope["scheme"] = proto
        await self.app(scope, receive, send)


__all__ = ["TrustedProxies", "forwarded_client", "parse_networks"]
