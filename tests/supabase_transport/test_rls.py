# ruff: noqa: E501  (the matrix keeps each SQL statement on one line)
"""The RLS matrix: every table x select / insert / update / delete x anon, owner, friend,
guild member, stranger and service_role, each run as PostgREST runs it (``set local role``
plus ``request.jwt.claims``) on a Supabase-like database. A cell that is allowed must touch
the row; a cell that is denied must touch nothing (or be refused). A wrong policy flips a
cell, and a test below shows one being caught."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import psycopg
import pytest

from wowlab_transport_supabase.testing.harness import supabase_database

from .world import World, make_world

ROLES: dict[str, tuple[str, str | None]] = {
    "anon": ("anon", None),
    "owner": ("authenticated", "owner"),
    "friend": ("authenticated", "friend"),
    "guild": ("authenticated", "guild"),
    "stranger": ("authenticated", "stranger"),
    "service": ("service_role", None),
}
PEOPLE_ROLES = ("owner", "friend", "guild", "stranger")
ALL = frozenset(ROLES)
SERVICE = frozenset({"service"})


def _only(*roles: str) -> frozenset[str]:
    return frozenset(roles) | SERVICE


# table -> (target condition, insert, update, delete, allowed per op). In statements,
# {me} is the acting person's user id (service: the owner's; anon: null) and {ids[...]}
# are the world's rows.
MATRIX: dict[str, dict[str, Any]] = {
    "users": {
        "target": "id = {u[owner]}",
        "insert": "insert into users (username, is_admin, created_at) values ('new-' || md5(random()::text), false, now())",
        "update": "update users set username = username where id = {u[owner]}",
        "delete": "delete from users where id = {u[owner]}",
        "allowed": {
            "select": _only("owner", "friend", "guild"),
            "insert": SERVICE,
            "update": _only("owner"),
            "delete": SERVICE,
        },
    },
    "guilds": {
        "target": "id = {ids[guild]}",
        "insert": "insert into guilds (name, owner_id) values ('g-' || md5(random()::text), {me})",
        "update": "update guilds set name = name where id = {ids[guild]}",
        "delete": "delete from guilds where id = {ids[guild]}",
        "allowed": {
            "select": _only("owner", "guild"),
            "insert": _only(*PEOPLE_ROLES),
            "update": _only("owner"),
            "delete": _only("owner"),
        },
    },
    "guild_members": {
        "target": "guild_id = {ids[guild]} and user_id = {u[guild]}",
        "insert": "insert into guild_members (guild_id, user_id, role) values ({ids[guild]}, {u[stranger]}, 'member')",
        "update": "update guild_members set role = role where guild_id = {ids[guild]} and user_id = {u[guild]}",
        "delete": "delete from guild_members where guild_id = {ids[guild]} and user_id = {u[guild]}",
        "allowed": {
            "select": _only("owner", "guild"),
            "insert": _only("owner"),
            "update": SERVICE,
            "delete": _only("owner", "guild"),
        },
    },
    "guild_invites": {
        "target": "guild_id = {ids[guild]} and user_id = {u[invitee]}",
        "insert": "insert into guild_invites (guild_id, user_id, invited_by) values ({ids[guild]}, {u[friend]}, {me})",
        "update": "update guild_invites set invited_by = invited_by where guild_id = {ids[guild]}",
        "delete": "delete from guild_invites where guild_id = {ids[guild]} and user_id = {u[invitee]}",
        "allowed": {
            "select": _only("owner", "guild"),
            "insert": _only("owner"),
            "update": SERVICE,
            "delete": _only("owner"),
        },
    },
    "friendships": {
        "target": "requester_id = {u[owner]} and addressee_id = {u[friend]}",
        "insert": "insert into friendships (requester_id, addressee_id) values ({me}, {u[invitee]})",
        "update": "update friendships set status = status where requester_id = {u[owner]} and addressee_id = {u[friend]}",
        "delete": "delete from friendships where requester_id = {u[owner]} and addressee_id = {u[friend]}",
        "allowed": {
            "select": _only("owner", "friend"),
            "insert": _only(*PEOPLE_ROLES),
            "update": _only("friend"),
            "delete": _only("owner", "friend"),
        },
    },
    "nodes": {
        "target": "id = {ids[node]}",
        "insert": "insert into nodes (name, token_hash, max_parallel, status, trust_score, created_at) values ('x', md5(random()::text), 1, 'pending', 0, now())",
        "update": "update nodes set name = name where id = {ids[node]}",
        "delete": "delete from nodes where id = {ids[node]}",
        "allowed": {
            "select": _only("owner", "friend", "guild"),
            "insert": SERVICE,
            "update": _only("owner"),
            "delete": _only("owner"),
        },
    },
    "node_access": {
        "target": "id = {ids[grants][friends]}",
        "insert": "insert into node_access (node_id, access_type, target_id) values ({ids[node]}, 'user', {u[stranger]})",
        "update": "update node_access set target_id = target_id where id = {ids[grants][friends]}",
        "delete": "delete from node_access where id = {ids[grants][friends]}",
        "allowed": {
            "select": _only("owner"),
            "insert": _only("owner"),
            "update": SERVICE,
            "delete": _only("owner"),
        },
    },
    "sim_configs": {
        "target": "hash = repeat('c', 64)",
        "insert": "insert into sim_configs (hash, config, engine, created_at, last_used_at) values (md5(random()::text), '{{}}', 'toy', now(), now())",
        "update": "update sim_configs set engine = engine where hash = repeat('c', 64)",
        "delete": "delete from sim_configs where hash = repeat('c', 64)",
        "allowed": {
            "select": _only("owner"),
            "insert": SERVICE,
            "update": SERVICE,
            "delete": frozenset(),  # a job refers to it: nobody deletes it
        },
    },
    "sim_jobs": {
        "target": "id = {ids[job]}",
        "insert": "insert into sim_jobs (user_id, config_hash, engine, total_iterations, completed_iterations, seed, status, max_attempts, own_nodes_only, allow_public, created_at) values ({me}, repeat('c', 64), 'toy', 10, 0, 1, 'pending', 2, false, false, now())",
        "update": "update sim_jobs set status = status where id = {ids[job]}",
        "delete": "delete from sim_jobs where id = {ids[job]}",
        "allowed": {
            "select": _only("owner"),
            "insert": SERVICE,
            "update": SERVICE,
            "delete": _only("owner"),
        },
    },
    "sim_chunks": {
        "target": "id = {ids[chunk]}",
        "insert": "insert into sim_chunks (job_id, config_hash, iterations, seed_offset, status, attempts, failures, expirations, progress, created_at) values ({ids[job]}, repeat('c', 64), 1, 1000, 'pending', 0, 0, 0, 0, now())",
        "update": "update sim_chunks set status = status where id = {ids[chunk]}",
        "delete": "delete from sim_chunks where id = {ids[chunk]}",
        "allowed": {
            "select": _only("owner"),
            "insert": SERVICE,
            "update": SERVICE,
            "delete": SERVICE,
        },
    },
    "chunk_leases": {
        "target": "id = {ids[lease]}",
        "insert": "insert into chunk_leases (chunk_id, node_id, token_hash, leased_at) values ({ids[chunk]}, {ids[node]}, md5(random()::text), now())",
        "update": "update chunk_leases set outcome = outcome where id = {ids[lease]}",
        "delete": "delete from chunk_leases where id = {ids[lease]}",
        "allowed": {op: SERVICE for op in ("select", "insert", "update", "delete")},
    },
    "notices": {
        "target": "id = {ids[notice]}",
        "insert": "insert into notices (user_id, kind, message, created_at) values ({me}, 'x', 'y', now())",
        "update": "update notices set read_at = now() where id = {ids[notice]}",
        "delete": "delete from notices where id = {ids[notice]}",
        "allowed": {
            "select": _only("owner"),
            "insert": SERVICE,
            "update": _only("owner"),
            "delete": _only("owner"),
        },
    },
    "api_tokens": {
        "target": "id = {ids[token]}",
        "insert": "insert into api_tokens (user_id, name, prefix, token_hash, created_at) values ({me}, 'n', 'p', md5(random()::text), now())",
        "update": "update api_tokens set name = name where id = {ids[token]}",
        "delete": "delete from api_tokens where id = {ids[token]}",
        "allowed": {op: SERVICE for op in ("select", "insert", "update", "delete")},
    },
    "web_sessions": {
        "target": "id_hash = repeat('f', 64)",
        "insert": "insert into web_sessions (id_hash, user_id, created_at, last_seen_at, expires_at) values (md5(random()::text), {me}, now(), now(), now())",
        "update": "update web_sessions set last_seen_at = now() where id_hash = repeat('f', 64)",
        "delete": "delete from web_sessions where id_hash = repeat('f', 64)",
        "allowed": {op: SERVICE for op in ("select", "insert", "update", "delete")},
    },
    "login_failures": {
        "target": "username = 'owner'",
        "insert": "insert into login_failures (username, address, failures, last_failed_at) values (md5(random()::text), 'x', 1, now())",
        "update": "update login_failures set failures = failures where username = 'owner'",
        "delete": "delete from login_failures where username = 'owner'",
        "allowed": {op: SERVICE for op in ("select", "insert", "update", "delete")},
    },
    "rate_limit_hits": {
        "target": "true",
        "insert": "insert into rate_limit_hits (key, at) values ('k', now())",
        "update": "update rate_limit_hits set key = key",
        "delete": "delete from rate_limit_hits",
        "allowed": {op: SERVICE for op in ("select", "insert", "update", "delete")},
    },
    "request_keys": {
        "target": "true",
        "insert": "insert into request_keys (key, created_at) values (md5(random()::text), now())",
        "update": "update request_keys set key = key",
        "delete": "delete from request_keys",
        "allowed": {op: SERVICE for op in ("select", "insert", "update", "delete")},
    },
    "alembic_version": {
        "target": "true",
        "insert": "insert into alembic_version (version_num) values ('zzzz')",
        "update": "update alembic_version set version_num = version_num",
        "delete": "delete from alembic_version",
        "allowed": {op: SERVICE for op in ("select", "insert", "update", "delete")},
    },
    "wowlab_wakeups": {
        "target": "id = {ids[wake]}",
        "insert": "insert into wowlab_wakeups (topic) values ('work')",
        "update": "update wowlab_wakeups set topic = topic where id = {ids[wake]}",
        "delete": "delete from wowlab_wakeups where id = {ids[wake]}",
        "allowed": {
            "select": ALL,  # opaque wake-up hints: a topic and a time, nothing else
            "insert": SERVICE,
            "update": SERVICE,
            "delete": SERVICE,
        },
    },
}
OPS = ("select", "insert", "update", "delete")


@pytest.fixture(scope="module")
def world() -> Iterator[World]:
    with supabase_database() as engine:
        yield make_world(engine)


def _statement(world: World, table: str, op: str, role: str) -> str:
    spec = MATRIX[table]
    person = ROLES[role][1]
    me = world.user[person] if person else (world.user["owner"] if role == "service" else "null")
    if op == "select":
        template = f"select count(*) from {table} where {spec['target']}"
    else:
        template = spec[op]
    return template.format(me=me, u=world.user, ids=world.ids)


def test_every_public_table_is_in_the_matrix(world: World) -> None:
    with psycopg.connect(world.conninfo) as conn:
        tables = {
            r[0]
            for r in conn.execute(
                "select tablename from pg_tables where schemaname = 'public'"
            ).fetchall()
        }
        no_rls = conn.execute(
            "select relname from pg_class c join pg_namespace n on n.oid = c.relnamespace "
            "where n.nspname in ('public', 'wowlab') and c.relkind = 'r' "
            "and not c.relrowsecurity"
        ).fetchall()
    assert tables == set(MATRIX)
    assert no_rls == []  # RLS is on for every table, the private schema's too


@pytest.mark.parametrize("op", OPS)
@pytest.mark.parametrize("role", list(ROLES))
@pytest.mark.parametrize("table", list(MATRIX))
def test_rls_matrix(world: World, table: str, op: str, role: str) -> None:
    db_role, person = ROLES[role]
    ok, touched = world.run_as(db_role, person, _statement(world, table, op, role))
    allowed = role in MATRIX[table]["allowed"][op]
    if allowed:
        assert ok and touched >= 1, f"{role} should be able to {op} {table}"
    else:
        assert not ok or touched == 0, f"{role} must not {op} {table}"


def test_pending_nodes_are_invisible_to_everyone_but_the_service(world: World) -> None:
    statement = f"select count(*) from nodes where id = {world.ids['pending']}"
    for role, (db_role, person) in ROLES.items():
        _, seen = world.run_as(db_role, person, statement)
        assert seen == (1 if role == "service" else 0), role


def test_secrets_are_not_readable_even_by_the_owner(world: World) -> None:
    for column in ("token_hash", "claim_code"):
        ok, _ = world.run_as(
            "authenticated",
            "owner",
            f"select count({column}) from nodes where id = {world.ids['node']}",
        )
        assert not ok, column


def test_an_owner_cannot_clear_their_nodes_flag_or_raise_its_trust(world: World) -> None:
    for change in ("flagged_at = null", "trust_score = 1000", "user_id = null", "token_hash = 'x'"):
        ok, _ = world.run_as(
            "authenticated", "owner", f"update nodes set {change} where id = {world.ids['node']}"
        )
        assert not ok, change


def test_nobody_creates_a_guild_for_someone_else_or_befriends_in_their_name(world: World) -> None:
    u = world.user
    for statement in (
        f"insert into guilds (name, owner_id) values ('forged', {u['owner']})",
        f"insert into friendships (requester_id, addressee_id) values ({u['owner']}, {u['invitee']})",
        f"insert into friendships (requester_id, addressee_id, status) values ({u['stranger']}, {u['owner']}, 'accepted')",
    ):
        ok, touched = world.run_as("authenticated", "stranger", statement)
        assert not ok or touched == 0, statement


def test_an_invitee_may_join_and_a_stranger_may_not(world: World) -> None:
    join = "insert into guild_members (guild_id, user_id, role) values ({g}, {me}, 'member')"
    ok, _ = world.run_as(
        "authenticated", "invitee", join.format(g=world.ids["guild"], me=world.user["invitee"])
    )
    assert ok
    ok, _ = world.run_as(
        "authenticated", "stranger", join.format(g=world.ids["guild"], me=world.user["stranger"])
    )
    assert not ok


def test_a_wrong_policy_fails_the_matrix(world: World) -> None:
    """Loosen one policy (as a mistaken migration would) and the stranger's cell flips."""
    statement = _statement(world, "nodes", "select", "stranger")
    assert world.run_as("authenticated", "stranger", statement)[1] == 0
    with psycopg.connect(world.conninfo) as conn:
        conn.execute("alter policy wowlab_nodes_select on nodes using (user_id is not null)")
        conn.commit()
        try:
            ok, seen = world.run_as("authenticated", "stranger", statement)
            assert ok and seen == 1  # the matrix cell (stranger, nodes, select) now fails
        finally:
            conn.execute(
                "alter policy wowlab_nodes_select on nodes using ("
                "user_id = (select wowlab.current_user_id()) or (user_id is not null and "
                "flagged_at is null and wowlab.may_use((select wowlab.current_user_id()), id, "
                "user_id, true)))"
            )
            conn.commit()
