"""Bad input gets a clear error and changes nothing in the database."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import write_session
from wowlab_core.errors import (
    AuthenticationFailed,
    ClaimCodeExpired,
    ClaimCodeInvalid,
    ConfigInvalid,
    EngineUnavailable,
    InvalidRequest,
    WowlabError,
)
from wowlab_core.hashing import content_hash, parse_json
from wowlab_core.jobs import JobLimits, submit_job
from wowlab_core.models import Node, User, utcnow
from wowlab_core.nodes import claim_node
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import Completion, NodeCredentials, NodeInfo
from wowlab_core.testing.plugin import TEST_SETTINGS

from .helpers import TOY, make_node, make_user


def snapshot(db: Engine) -> dict[str, list[Any]]:
    """Every row of every table."""
    with db.connect() as conn:
        return {
            name: [
                tuple(map(str, row))
                for row in conn.execute(sa.select(table).order_by(*table.primary_key.columns))
            ]
            for name, table in SQLModel.metadata.tables.items()
        }


@pytest.fixture
def setup(db: Engine, wowlab_hooks: Hooks) -> tuple[Engine, Hooks, User, NodeCredentials, Node]:
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner)
    pending, _ = make_node(db, None, name="pending")
    return db, wowlab_hooks, owner, creds, pending


def submit(db: Engine, hooks: Hooks, user: User, **kwargs: Any) -> None:
    args: dict[str, Any] = {"config": TOY, "iterations": 100, "engine_name": "toy", "seed": 1}
    args.update(kwargs)
    with write_session(db) as s:
        submit_job(s, user=user, hooks=hooks, limits=JobLimits(max_iterations=1_000_000), **args)
        s.commit()


CASES: dict[str, tuple[type[WowlabError], str, Callable[..., Any]]] = {
    "config with an unknown field": (
        ConfigInvalid,
        "spreed: unknown field",
        lambda db, h, u, c, p: submit(db, h, u, config={"spreed": 3}),
    ),
    "config of the wrong type": (
        ConfigInvalid,
        "must be a JSON object",
        lambda db, h, u, c, p: submit(db, h, u, config=[1, 2]),
    ),
    "config with NaN": (
        ConfigInvalid,
        "not valid JSON",
        lambda db, h, u, c, p: submit(db, h, u, config={"base_dps": float("nan")}),
    ),
    "unknown engine": (
        EngineUnavailable,
        "unknown engine 'simc'",
        lambda db, h, u, c, p: submit(db, h, u, engine_name="simc"),
    ),
    "zero iterations": (
        InvalidRequest,
        "iterations must be between 1",
        lambda db, h, u, c, p: submit(db, h, u, iterations=0),
    ),
    "negative iterations": (
        InvalidRequest,
        "iterations must be between 1",
        lambda db, h, u, c, p: submit(db, h, u, iterations=-5),
    ),
    "iterations above the limit": (
        InvalidRequest,
        "between 1 and 1,000,000, got 1,000,001",
        lambda db, h, u, c, p: submit(db, h, u, iterations=1_000_001),
    ),
    "iterations not a number": (
        InvalidRequest,
        "iterations must be a whole number",
        lambda db, h, u, c, p: submit(db, h, u, iterations="100"),
    ),
    "more chunks than iterations": (
        InvalidRequest,
        "chunks must be between 1 and 100",
        lambda db, h, u, c, p: submit(db, h, u, chunks=101),
    ),
    "negative seed": (
        InvalidRequest,
        "seed must be between 0",
        lambda db, h, u, c, p: submit(db, h, u, seed=-1),
    ),
    "wrong claim code": (
        ClaimCodeInvalid,
        "no node is waiting with this claim code",
        lambda db, h, u, c, p: _claim(db, u, "ZZZ-ZZZ" if p.claim_code != "ZZZZZZ" else "YYYYYY"),
    ),
    "malformed claim code": (
        ClaimCodeInvalid,
        "a claim code is 6 letters",
        lambda db, h, u, c, p: _claim(db, u, "0O1I"),
    ),
    "expired claim code": (
        ClaimCodeExpired,
        "has expired",
        lambda db, h, u, c, p: _claim_expired(db, u, p),
    ),
    "wrong node token on lease": (
        AuthenticationFailed,
        "node id or token is not valid",
        lambda db, h, u, c, p: _coord(db, h).lease(NodeCredentials(c.node_id, "nope"), 1),
    ),
    "wrong node token on complete": (
        AuthenticationFailed,
        "node id or token is not valid",
        lambda db, h, u, c, p: _coord(db, h).complete(
            NodeCredentials(c.node_id, c.token + "x"), [Completion(1, "t", {})]
        ),
    ),
    "node registration without a name": (
        InvalidRequest,
        "node name must be 1 to 100 characters",
        lambda db, h, u, c, p: _coord(db, h).register(NodeInfo(name=" ")),
    ),
    "node registration with zero workers": (
        InvalidRequest,
        "max_parallel must be between 1 and 256",
        lambda db, h, u, c, p: _coord(db, h).register(NodeInfo(name="n", max_parallel=0)),
    ),
}


def _coord(db: Engine, hooks: Hooks) -> Coordinator:
    return Coordinator(db, hooks=hooks, settings=TEST_SETTINGS)


def _claim(db: Engine, user: User, code: str) -> None:
    with write_session(db) as s:
        claim_node(s, user=user, code=code)
        s.commit()


def _claim_expired(db: Engine, user: User, pending: Node) -> None:
    code = pending.claim_code or ""
    with write_session(db) as s:
        claim_node(s, user=user, code=code, now=utcnow() + timedelta(minutes=16))
        s.commit()


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_is_refused_and_changes_nothing(setup: Any, case: str) -> None:
    db, hooks, user, creds, pending = setup
    error, message, action = CASES[case]
    before = snapshot(db)
    with pytest.raises(error) as caught:
        action(db, hooks, user, creds, pending)
    assert message in caught.value.message
    assert "\n" not in caught.value.message
    assert snapshot(db) == before


def test_malformed_json_names_line_and_column() -> None:
    with pytest.raises(
        ConfigInvalid, match=r"config is not valid JSON: Expecting ',' delimiter at line 2 column 3"
    ):
        parse_json('{"a": 1\n  "b": 2}')
    with pytest.raises(ConfigInvalid, match=r"NaN is not allowed at a$") as caught:
        parse_json('{"a": NaN}')
    assert caught.value.field == "a"


def test_a_non_finite_number_names_its_field() -> None:
    with pytest.raises(ConfigInvalid, match=r"Infinity is not allowed at s\[1\]\.d$") as caught:
        parse_json('{"s": [{}, {"c": 1, "d": Infinity}]}')
    assert caught.value.field == "s[1].d"
    # The API parses NaN into a float; hashing the config names the path too.
    with pytest.raises(ConfigInvalid, match=r"NaN is not allowed at s\[0\]$") as caught:
        content_hash({"s": [float("nan")]})
    assert caught.value.field == "s[0]"


def test_errors_carry_a_json_body_naming_the_field() -> None:
    err = InvalidRequest("iterations must be between 1 and 10", field="iterations")
    assert json.loads(json.dumps(err.to_dict())) == {
        "error": "InvalidRequest",
        "detail": "iterations must be between 1 and 10",
        "field": "iterations",
    }
    assert err.status_code == 422 and AuthenticationFailed("x").status_code == 401
