"""Realtime wake-ups: a hint that work may be waiting or that the node was claimed.

The node subscribes (supabase-py's async client, Realtime ``postgres_changes``) to inserts
into ``public.wowlab_wakeups`` whose topic is ``work`` or the node's own topic, which is
derived from its secret token: ``sha256('wowlab-wake:' + sha256(token))``. Realtime has open
reliability issues (spurious TIMED_OUT, subscriptions lost after a reconnect), so a wake-up
only shortens the wait: polling the RPC functions stays the truth.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Mapping
from typing import Any

import anyio

from wowlab_core.tokens import hash_token

log = logging.getLogger(__name__)

WAKEUPS_TABLE = "wowlab_wakeups"
WORK_TOPIC = "work"


def wake_topic(token: str) -> str:
    """The node's own wake-up topic (the SQL computes it from the stored token hash)."""
    return hashlib.sha256(f"wowlab-wake:{hash_token(token)}".encode()).hexdigest()


class WakeSignals:
    """Two level-triggered signals the transport waits on: work, and the node's own topic."""

    def __init__(self, own_topic: str | None = None) -> None:
        self.own_topic = own_topic
        self.work = anyio.Event()
        self.claim = anyio.Event()
        self.received = 0

    def handle_change(self, payload: Mapping[str, Any]) -> None:
        """A Realtime ``postgres_changes`` payload (supabase-py's callback argument):
        ``{"data": {"table": ..., "type": "INSERT", "record": {"topic": ...}}}`` or the
        inner ``data`` object itself."""
        data = payload.get("data", payload)
        if not isinstance(data, Mapping) or data.get("table") not in (None, WAKEUPS_TABLE):
            return
        record = data.get("record")
        topic = record.get("topic") if isinstance(record, Mapping) else None
        if topic == WORK_TOPIC:
            self.received += 1
            self.work.set()
        elif topic is not None and topic == self.own_topic:
            self.received += 1
            self.claim.set()
            self.work.set()  # a claimed node looks for work at once too

    def take_work(self) -> bool:
        """Whether a work wake-up arrived since the last call (and clear it)."""
        if self.work.is_set():
            self.work = anyio.Event()
            return True
        return False

    def take_claim(self) -> bool:
        """Whether a claim wake-up arrived since the last call (and clear it)."""
        if self.claim.is_set():
            self.claim = anyio.Event()
            return True
        return False


async def wait_for(event_getter: Any, timeout: float) -> bool:
    """Wait until ``event_getter()`` (an anyio Event) is set, or ``timeout``; True if set."""
    with anyio.move_on_after(max(timeout, 0.0)):
        await event_getter().wait()
        return True
    return False


def subscription_filter(own_topic: str | None) -> str:
    """The Realtime filter of the node's subscription."""
    topics = [WORK_TOPIC] + ([own_topic] if own_topic else [])
    return f"topic=in.({','.join(topics)})"


__all__ = [
    "WAKEUPS_TABLE",
    "WORK_TOPIC",
    "WakeSignals",
    "subscription_filter",
    "wait_for",
    "wake_topic",
]
