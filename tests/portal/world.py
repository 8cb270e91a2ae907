"""A small world of users, a guild, a shared node and jobs, made through the app's own
functions: the owner ``alice``; ``fred`` her friend; ``gina`` in alice's guild; ``olga``
a stranger, invited to the guild but not in it. Alice's node is shared with her friends
and her guild."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.engine import Engine

from wowlab_core.access import set_access
from wowlab_core.coordinator import Coordinator
from wowlab_core.db import write_session
from wowlab_core.jobs import submit_job
from wowlab_core.models import AccessType
from wowlab_core.nodes import claim_node
from wowlab_core.protocol import Completion, NodeCredentials, NodeInfo
from wowlab_core.scheduler import complete_job
from wowlab_core.testing.conformance import TOY_CONFIG, toy_result
from wowlab_portal.social import create_guild, invite, join, request_friend

from .conftest import Account, make_account


@dataclass
class World:
    """Who is who, and ids to put in paths."""

    accounts: dict[str, Account]
    node_id: int
    node: NodeCredentials
    guild_id: int
    job_id: int
    done_job_id: int
    pending_code: str
    tag: str
    extra: dict[str, Any] = field(default_factory=dict)

    def headers(self, who: str) -> dict[str, str]:
        """Request headers of an actor (``anon``: none; ``node``: the node's credentials)."""
        if who == "anon":
            return {}
        if who == "node":
            return {
                "Authorization": f"Bearer {self.node.token}",
                "X-Wowlab-Node": str(self.node.node_id),
            }
        return self.accounts[who].headers


def build_world(db: Engine, coordinator: Coordinator) -> World:
    """Make the world (unique names, so several can share a database)."""
    tag = secrets.token_hex(3)
    accounts = {who: make_account(db, f"{who}-{tag}") for who in ("alice", "fred", "gina", "olga")}
    alice, fred, gina = (accounts[w].user for w in ("alice", "fred", "gina"))
    reg = coordinator.register(NodeInfo(name="rig", max_parallel=2, cores=8, platform="linux"))
    pending = coordinator.register(NodeInfo(name="spare", max_parallel=1, platform="windows"))
    with write_session(db) as session:
        friendship = request_friend(session, user=alice, other=fred)
        request_friend(session, user=fred, other=alice)  # accepts
        assert friendship.status == "accepted"
        guild = create_guild(session, user=alice, name=f"guild-{tag}")
        invite(session, guild=guild, by=alice, invitee=gina)
        join(session, guild_id=guild.id or 0, user=gina)
        invite(session, guild=guild, by=alice, invitee=accounts["olga"].user)  # not accepted
        node = claim_node(session, user=alice, code=reg.claim_code)
        set_access(
            session, node=node, grants=[(AccessType.FRIENDS, None), (AccessType.GUILD, guild.id)]
        )
        job = submit_job(
            session, user=alice, config=TOY_CONFIG, iterations=100, hooks=coordinator.hooks
        )
        done = submit_job(
            session, user=alice, config=TOY_CONFIG, iterations=10, hooks=coordinator.hooks
        )
        complete_job(
            session,
            job=done,
            report={"dps": {"mean": 1000.0, "error95": 1.0, "error_pct": 0.1}, "iterations": 10},
        )
        session.commit()
        ids = (node.id, guild.id, job.id, done.id)
    node_id, guild_id, job_id, done_id = (i or 0 for i in ids)
    return World(
        accounts=accounts,
        node_id=node_id,
        node=NodeCredentials(node_id=reg.node_id, token=reg.token),
        guild_id=guild_id,
        job_id=job_id,
        done_job_id=done_id,
        pending_code=pending.claim_code,
        tag=tag,
    )


def run_all_chunks(coordinator: Coordinator, creds: NodeCredentials) -> int:
    """Lease and complete (with correct toy results) until nothing is left and every
    finished job is merged; chunks done."""
    done = 0
    while True:
        leases = coordinator.lease(creds, 8)
        if not leases:
            coordinator.settle()  # a merge may plan another round (a target error)
            leases = coordinator.lease(creds, 8)
            if not leases:
                return done
        coordinator.complete(
            creds,
            [
                Completion(chunk_id=le.chunk_id, lease_token=le.lease_token, result=toy_result(le))
                for le in leases
            ],
        )
        done += len(leases)


__all__ = ["World", "build_world", "run_all_chunks"]
