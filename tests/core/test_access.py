"""Access rules: a matrix over owner / user / friends / guild / public grants, revoked
grants included, checked both ways (the nodes a user may use, and the jobs a node may
lease), on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine

from wowlab_core.access import grant_access, may_use_node, revoke_access, set_access, usable_nodes
from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session, write_session
from wowlab_core.errors import InvalidRequest, NotFound
from wowlab_core.models import AccessType, Friendship, Guild, GuildMember, Node, User
from wowlab_core.plugins import Hooks
from wowlab_core.testing.plugin import TEST_SETTINGS

from .helpers import make_job, make_node, make_user

PEOPLE = ["owner", "chosen", "friend", "asked", "guildie", "outsider"]

# Which people may use the node under each grant set.
MATRIX = {
    "owner only": ({"owner"}, [(AccessType.OWNER, None)]),
    "chosen user": ({"owner", "chosen"}, [(AccessType.USER, "chosen")]),
    "friends": ({"owner", "friend"}, [(AccessType.FRIENDS, None)]),
    "guild": ({"owner", "guildie"}, [(AccessType.GUILD, "guild")]),
    "public": (set(PEOPLE), [(AccessType.PUBLIC, None)]),
    "friends and guild": (
        {"owner", "friend", "guildie"},
        [(AccessType.FRIENDS, None), (AccessType.GUILD, "guild")],
    ),
}


@pytest.fixture
def world(db: Engine) -> dict[str, int]:
    """Six people, a guild, one accepted and one pending friendship."""
    ids = {name: make_user(db, name).id or 0 for name in PEOPLE}
    with write_session(db) as s:
        guild = Guild(name="Liquid", owner_id=ids["owner"])
        s.add(guild)
        s.flush()
        ids["guild"] = guild.id or 0
        s.add(GuildMember(guild_id=guild.id or 0, user_id=ids["owner"], role="owner"))
        s.add(GuildMember(guild_id=guild.id or 0, user_id=ids["guildie"]))
        s.add(Friendship(requester_id=ids["friend"], addressee_id=ids["owner"], status="accepted"))
        s.add(Friendship(requester_id=ids["owner"], addressee_id=ids["asked"], status="pending"))
        s.commit()
    return ids


def _grants(
    ids: dict[str, int], grants: list[tuple[AccessType, str | None]]
) -> list[tuple[AccessType, int | None]]:
    return [(kind, ids[target] if target else None) for kind, target in grants]


def _allowed_by_query(db: Engine, node_id: int, hooks: Hooks) -> set[str]:
    with read_session(db) as s:
        people = {u.username: u for u in (s.get(User, i) for i in range(1, 100)) if u is not None}
        return {
            name
            for name, user in people.items()
            if node_id in {n.id for n in usable_nodes(s, user, hooks=hooks)}
        }


@pytest.mark.parametrize("case", list(MATRIX))
def test_access_matrix(db: Engine, world: dict[str, int], wowlab_hooks: Hooks, case: str) -> None:
    expected, grants = MATRIX[case]
    with read_session(db) as s:
        owner = s.get(User, world["owner"])
    node, creds = make_node(db, owner, max_parallel=8)
    with write_session(db) as s:
        set_access(s, node=node, grants=_grants(world, grants))
        s.commit()
    assert _allowed_by_query(db, node.id or 0, wowlab_hooks) == expected
    with read_session(db) as s:
        for name in PEOPLE:
            user = s.get(User, world[name])
            assert user is not None
            assert may_use_node(s, user, node, hooks=wowlab_hooks) == (name in expected), name
    # The lease query agrees: the node leases exactly the jobs of the allowed people
    # (jobs that opted in to public nodes; see the test below for the default).
    jobs = {
        name: make_job(
            db,
            s.get(User, world[name]) or owner,  # type: ignore[arg-type]
            wowlab_hooks,
            iterations=5,
            chunks=1,
            allow_public=True,
        )
        for name in PEOPLE
    }
    leased = {
        lease.job_id
        for lease in Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS).lease(creds, 20)
    }
    assert leased == {jobs[name] for name in expected}


def test_public_nodes_run_only_jobs_that_opt_in(
    db: Engine, world: dict[str, int], wowlab_hooks: Hooks
) -> None:
    """A stranger's public node takes a job only when its owner chose public nodes."""
    with read_session(db) as s:
        owner = s.get(User, world["owner"])
        stranger = s.get(User, world["outsider"])
    assert owner is not None and stranger is not None
    node, creds = make_node(db, stranger, max_parallel=8)
    with write_session(db) as s:
        set_access(s, node=node, grants=[(AccessType.PUBLIC, None)])
        s.commit()
    default_job = make_job(db, owner, wowlab_hooks, iterations=5, chunks=1)
    public_job = make_job(db, owner, wowlab_hooks, iterations=5, chunks=1, allow_public=True)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    assert {lease.job_id for lease in coordinator.lease(creds, 8)} == {public_job}
    assert default_job != public_job
    with read_session(db) as s:
        # Seen from the submitter: the public node counts only for a job that opts in.
        ids = {n.id for n in usable_nodes(s, owner, hooks=wowlab_hooks, include_public=False)}
        assert node.id not in ids
        assert node.id in {n.id for n in usable_nodes(s, owner, hooks=wowlab_hooks)}


def test_revoked_grants_stop_access(db: Engine, world: dict[str, int], wowlab_hooks: Hooks) -> None:
    with read_session(db) as s:
        owner = s.get(User, world["owner"])
        chosen = s.get(User, world["chosen"])
    assert owner is not None and chosen is not None
    node, creds = make_node(db, owner)
    with write_session(db) as s:
        grant_access(s, node=node, access_type=AccessType.USER, target_id=chosen.id)
        grant_access(s, node=node, access_type="public")
        s.commit()
    with write_session(db) as s:
        assert revoke_access(s, node=node, access_type="public") == 1
        s.commit()
    assert _allowed_by_query(db, node.id or 0, wowlab_hooks) == {"owner", "chosen"}
    with write_session(db) as s:
        assert revoke_access(s, node=node, access_type=AccessType.USER, target_id=chosen.id) == 1
        s.commit()
    assert _allowed_by_query(db, node.id or 0, wowlab_hooks) == {"owner"}
    make_job(db, chosen, wowlab_hooks, iterations=5, chunks=1)
    assert Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS).lease(creds, 5) == []


def test_leaving_the_guild_or_unfriending_revokes(
    db: Engine, world: dict[str, int], wowlab_hooks: Hooks
) -> None:
    with read_session(db) as s:
        owner = s.get(User, world["owner"])
    node, _ = make_node(db, owner)
    with write_session(db) as s:
        set_access(
            s,
            node=node,
            grants=_grants(world, [(AccessType.FRIENDS, None), (AccessType.GUILD, "guild")]),
        )
        s.commit()
    with write_session(db) as s:
        s.delete(s.get(GuildMember, (world["guild"], world["guildie"])))
        friendship = s.exec(
            __import__("sqlmodel")
            .select(Friendship)
            .where(Friendship.requester_id == world["friend"])
        ).one()
        s.delete(friendship)
        s.commit()
    assert _allowed_by_query(db, node.id or 0, wowlab_hooks) == {"owner"}


def test_pending_nodes_are_nobodys(db: Engine, world: dict[str, int], wowlab_hooks: Hooks) -> None:
    node, _ = make_node(db, None)
    with read_session(db) as s:
        for name in PEOPLE:
            user = s.get(User, world[name])
            assert user is not None and not may_use_node(s, user, node)
        assert all(n.id != node.id for n in usable_nodes(s, user))


def test_own_nodes_only_jobs_skip_shared_nodes(
    db: Engine, world: dict[str, int], wowlab_hooks: Hooks
) -> None:
    with read_session(db) as s:
        owner, chosen = s.get(User, world["owner"]), s.get(User, world["chosen"])
    assert owner is not None and chosen is not None
    shared, shared_creds = make_node(db, owner, name="shared")
    _, mine_creds = make_node(db, chosen, name="mine")
    with write_session(db) as s:
        grant_access(s, node=shared, access_type=AccessType.PUBLIC)
        s.commit()
    job = make_job(db, chosen, wowlab_hooks, iterations=5, chunks=1, own_nodes_only=True)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    assert coordinator.lease(shared_creds, 5) == []
    assert [le.job_id for le in coordinator.lease(mine_creds, 5)] == [job]


def test_bad_grants_are_refused(db: Engine, world: dict[str, int]) -> None:
    with read_session(db) as s:
        owner = s.get(User, world["owner"])
    node, _ = make_node(db, owner)
    with write_session(db) as s:
        n = s.get(Node, node.id)
        assert n is not None
        with pytest.raises(InvalidRequest, match="unknown access type 'everyone'"):
            grant_access(s, node=n, access_type="everyone")
        with pytest.raises(InvalidRequest, match="needs a target"):
            grant_access(s, node=n, access_type="user")
        with pytest.raises(NotFound, match="no guild with id 9999"):
            grant_access(s, node=n, access_type="guild", target_id=9999)
        with pytest.raises(InvalidRequest, match="takes no target"):
            grant_access(s, node=n, access_type="public", target_id=world["chosen"])
        first = grant_access(s, node=n, access_type="public")
        assert grant_access(s, node=n, access_type="public").id == first.id  # idempotent
