"""Test data made through the functions the app uses."""

from __future__ import annotations

from typing import Any

from sqlalchemy.engine import Engine

from wowlab_core.db import write_session
from wowlab_core.jobs import submit_job
from wowlab_core.models import User
from wowlab_core.plugins import Hooks


def make_user(db: Engine, name: str) -> User:
    with write_session(db) as s:
        user = User(username=name)
        s.add(user)
        s.commit()
        return user


def make_job(
    db: Engine,
    user: User,
    hooks: Hooks,
    *,
    iterations: int,
    chunks: int,
    config: dict[str, Any],
    seed: int = 1,
    engine_name: str = "labelled",
) -> int:
    with write_session(db) as s:
        job = submit_job(
            s,
            user=user,
            config=config,
            iterations=iterations,
            engine_name=engine_name,
            seed=seed,
            hooks=hooks,
            chunks=chunks,
        )
        s.commit()
        return job.id or 0
