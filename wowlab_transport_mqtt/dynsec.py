"""The bridge manages node accounts through Mosquitto's dynamic-security plugin.

Commands are JSON published to ``$CONTROL/dynamic-security/v1``; the plugin answers on
``$CONTROL/dynamic-security/v1/response`` (QoS 0, to every client allowed to read it:
only the bridge), echoing each command's ``correlationData``. :class:`DynsecControl`
sends a batch and waits for its answers in the event loop; :class:`NodeAccounts` is what
the bridge asks for: create a node's account, delete it, list the node accounts.
"""

from __future__ import annotations

import itertools
import json
import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import anyio

from wowlab_core.errors import TransportError
from wowlab_transport_mqtt import accounts

log = logging.getLogger(__name__)


@dataclass
class _Batch:
    size: int
    answers: dict[int, dict[str, Any]] = field(default_factory=dict)
    done: anyio.Event = field(default_factory=anyio.Event)


class DynsecControl:
    """Dynamic-security commands over the bridge's MQTT connection (event loop only)."""

    def __init__(self, publish: Callable[[bytes], None], *, timeout: float = 10.0) -> None:
        self._publish = publish
        self._timeout = timeout
        self._numbers = itertools.count(1)
        # Every bridge reads every answer: the tag says whose it is.
        self._instance = secrets.token_hex(6)
        self._waiting: dict[str, _Batch] = {}

    async def run(self, commands: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send ``commands`` as one message; their answers in order (each may hold an
        ``error``). Raises :class:`TransportError` when no complete answer comes in time."""
        name = f"wowlab-{self._instance}-{next(self._numbers)}"
        tagged = [{**c, "correlationData": f"{name}/{i}"} for i, c in enumerate(commands)]
        batch = self._waiting[name] = _Batch(len(commands))
        try:
            self._publish(json.dumps({"commands": tagged}).encode("utf-8"))
            with anyio.move_on_after(self._timeout):
                await batch.done.wait()
        finally:
            del self._waiting[name]
        if not batch.done.is_set():
            raise TransportError(
                "the MQTT broker did not answer a dynamic-security command within "
                f"{self._timeout:g} s (is the dynamic-security plugin loaded, and may the "
                "bridge use $CONTROL/dynamic-security/v1?)"
            )
        return [batch.answers[i] for i in range(batch.size)]

    def deliver(self, payload: bytes | bytearray) -> None:
        """An answer message arrived (call in the event loop)."""
        try:
            body = json.loads(payload)
        except ValueError:
            body = None
        responses = body.get("responses") if isinstance(body, dict) else None
        if not isinstance(responses, list):
            log.warning("ignoring a malformed dynamic-security answer")
            return
        for response in responses:
            tag = response.get("correlationData") if isinstance(response, dict) else None
            if not isinstance(tag, str):
                continue
            name, _, index = tag.rpartition("/")
            batch = self._waiting.get(name)
            if batch is None or not index.isdigit() or int(index) >= batch.size:
                continue  # an answer nobody waits for (it timed out, or another bridge's)
            batch.answers[int(index)] = response
            if len(batch.answers) == batch.size:
                batch.done.set()


def _failed(answer: dict[str, Any], *, gone_is_fine: bool = False) -> str | None:
    error = answer.get("error")
    if not error:
        return None
    if gone_is_fine and "not found" in str(error).lower():
        return None
    return f"{answer.get('command')}: {error}"


class NodeAccounts:
    """Node accounts on the broker: one client (user name = node id, bound to a client
    id) and one role per node. See :mod:`wowlab_transport_mqtt.accounts`."""

    def __init__(self, control: DynsecControl) -> None:
        self.control = control

    async def create(self, node_id: int, token: str) -> None:
        """(Re)create node ``node_id``'s account with the password and client id its
        token derives. Raises :class:`TransportError` if the broker refuses."""
        create = accounts.node_account_commands(node_id, token)
        # Every change makes the plugin rewrite its whole file: two commands for a new
        # node, four only when an old account is in the way (a reused id, a lost one).
        answers = await self.control.run(create)
        if any("already exists" in str(a.get("error", "")).lower() for a in answers):
            answers = await self.control.run(
                accounts.delete_node_account_commands(node_id) + create
            )
            answers = answers[2:]
        refused = [e for e in (_failed(a) for a in answers) if e]
        if refused:
            raise TransportError(
                f"the broker refused node {node_id}'s MQTT account: {'; '.join(refused)}"
            )

    async def delete(self, node_id: int) -> None:
        """Delete node ``node_id``'s account (the broker disconnects it); gone is fine."""
        answers = await self.control.run(accounts.delete_node_account_commands(node_id))
        refused = [e for e in (_failed(a, gone_is_fine=True) for a in answers) if e]
        if refused:
            raise TransportError(
                f"the broker did not delete node {node_id}'s MQTT account: {'; '.join(refused)}"
            )

    async def node_ids(self) -> set[int]:
        """The node ids that have an account on the broker."""
        [answer] = await self.control.run([{"command": "listClients", "verbose": False}])
        problem = _failed(answer)
        if problem:
            raise TransportError(f"the broker did not list its accounts: {problem}")
        data = answer.get("data")
        names = data.get("clients") if isinstance(data, dict) else None
        ids = set()
        for name in names if isinstance(names, list) else []:
            node_id = accounts.node_id_of_username(name) if isinstance(name, str) else None
            if node_id is not None:
                ids.add(node_id)
        return ids


__all__ = ["DynsecControl", "NodeAccounts"]
