"""Small builders shared by the core tests; they go through the same functions the app uses."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from wowlab_core.db import write_session
from wowlab_core.jobs import submit_job
from wowlab_core.models import Node, User
from wowlab_core.nodes import claim_node, register_node
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import NodeCredentials, NodeInfo

TOY = {"base_dps": 1000, "spread": 300}


def make_user(db: Engine, name: str) -> User:
    with write_session(db) as s:
        user = User(username=name)
        s.add(user)
        s.commit()
        return user


def make_node(
    db: Engine,
    owner: User | None,
    *,
    name: str = "node",
    hooks: Hooks | None = None,
    max_parallel: int = 2,
) -> tuple[Node, NodeCredentials]:
    """Register a node and, if ``owner`` is given, claim it with its code."""
    with write_session(db) as s:
        new = register_node(s, info=NodeInfo(name=name, max_parallel=max_parallel), hooks=hooks)
        s.commit()
        node, token = new.node, new.token
    if owner is not None:
        with write_session(db) as s:
            node = claim_node(s, user=owner, code=node.claim_code or "")
            s.commit()
    return node, NodeCredentials(node_id=node.id or 0, token=token)


def make_job(
    db: Engine,
    user: User,
    hooks: Hooks,
    *,
    iterations: int = 100,
    chunks: int | None = 4,
    seed: int = 1,
    config: dict[str, Any] | None = None,
    engine_name: str = "toy",
    **kwargs: Any,
) -> int:
    with write_session(db) as s:
        job = submit_job(
            s,
            user=user,
            config=config or TOY,
            iterations=iterations,
            engine_name=engine_name,
            seed=seed,
            hooks=hooks,
            chunks=chunks,
            **kwargs,
        )
        s.commit()
        return job.id or 0
