"""A small world on a Supabase-like database, made as the service role would: Supabase
Auth users (owner, friend, guild member, stranger, invitee) and one row of every table,
owned by or about ``owner``; and a way to run SQL as an API role exactly as PostgREST does
(``set local role`` plus ``request.jwt.claims``), always rolled back."""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass, field
from typing import Any

import psycopg
from sqlalchemy.engine import Engine

PEOPLE = ("owner", "friend", "guild", "stranger", "invitee")


@dataclass
class World:
    """Ids of the rows the matrix looks at."""

    conninfo: str
    auth: dict[str, str] = field(default_factory=dict)  # person -> auth.users id
    user: dict[str, int] = field(default_factory=dict)  # person -> users.id
    ids: dict[str, Any] = field(default_factory=dict)

    def run_as(self, role: str, person: str | None, statement: str) -> tuple[bool, int]:
        """Run ``statement`` as ``role`` (claims of ``person``); (succeeded, rows touched).
        The transaction is always rolled back."""
        claims: dict[str, Any] = {"role": role}
        if person is not None:
            claims["sub"] = self.auth[person]
        with psycopg.connect(self.conninfo, user="authenticator") as conn:
            try:
                conn.execute(f"set local role {role}")
                conn.execute(
                    "select set_config('request.jwt.claims', %s, true)", (json.dumps(claims),)
                )
                cur = conn.execute(statement)  # type: ignore[arg-type]
                if cur.description is not None and statement.lstrip().lower().startswith("select"):
                    row = cur.fetchone()
                    touched = int(row[0]) if row is not None else 0
                else:
                    touched = cur.rowcount
                return True, touched
            except psycopg.errors.InsufficientPrivilege:
                return False, 0
            except psycopg.Error:
                return False, 0
            finally:
                conn.rollback()


def make_world(engine: Engine) -> World:
    """Create the people and one row of each table."""
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    world = World(conninfo=conninfo)
    with psycopg.connect(conninfo, autocommit=True) as conn:
        for person in PEOPLE:
            auth_id = str(uuid.uuid4())
            conn.execute(
                "insert into auth.users (id, email, raw_user_meta_data) values (%s, %s, %s)",
                (auth_id, f"{person}@example.org", json.dumps({"username": person})),
            )
            world.auth[person] = auth_id
            world.user[person] = conn.execute(
                "select user_id from wowlab.auth_users where auth_id = %s", (auth_id,)
            ).fetchone()[0]
        u = world.user
        q = conn.execute
        q(
            "insert into friendships (requester_id, addressee_id, status, created_at) "
            "values (%s, %s, 'accepted', now())",
            (u["owner"], u["friend"]),
        )
        guild = q(
            "insert into guilds (name, owner_id, created_at) values ('G', %s, now()) returning id",
            (u["owner"],),
        ).fetchone()[0]
        for person, role in (("owner", "owner"), ("guild", "member")):
            q(
                "insert into guild_members (guild_id, user_id, role, created_at) "
                "values (%s, %s, %s, now())",
                (guild, u[person], role),
            )
        q(
            "insert into guild_invites (guild_id, user_id, invited_by, created_at) "
            "values (%s, %s, %s, now())",
            (guild, u["invitee"], u["owner"]),
        )
        node = q(
            "insert into nodes (user_id, name, token_hash, max_parallel, status, trust_score, "
            "created_at, claimed_at) values (%s, 'N', %s, 2, 'online', 0, now(), now()) "
            "returning id",
            (u["owner"], "a" * 64),
        ).fetchone()[0]
        pending = q(
            "insert into nodes (name, token_hash, claim_code, claim_expires_at, max_parallel, "
            "status, trust_score, created_at) values ('P', %s, 'ABCDEF', now() + interval '1 h',"
            " 1, 'pending', 0, now()) returning id",
            ("b" * 64,),
        ).fetchone()[0]
        grants = {}
        for kind, target in (("owner", None), ("friends", None), ("guild", guild)):
            grants[kind] = q(
                "insert into node_access (node_id, access_type, target_id, created_at) "
                "values (%s, %s, %s, now()) returning id",
                (node, kind, target),
            ).fetchone()[0]
        q(
            "insert into sim_configs (hash, config, engine, created_at, last_used_at) "
            "values (%s, '{}', 'toy', now(), now())",
            ("c" * 64,),
        )
        job = q(
            "insert into sim_jobs (user_id, config_hash, engine, total_iterations, "
            "completed_iterations, seed, status, max_attempts, own_nodes_only, allow_public, "
            "created_at) values (%s, %s, 'toy', 10, 0, 7, 'pending', 2, false, false, now()) "
            "returning id",
            (u["owner"], "c" * 64),
        ).fetchone()[0]
        chunk = q(
            "insert into sim_chunks (job_id, config_hash, iterations, seed_offset, status, "
            "attempts, failures, expirations, progress, created_at) "
            "values (%s, %s, 10, 0, 'pending', 0, 0, 0, 0, now()) returning id",
            (job, "c" * 64),
        ).fetchone()[0]
        lease = q(
            "insert into chunk_leases (chunk_id, node_id, token_hash, leased_at) "
            "values (%s, %s, %s, now()) returning id",
            (chunk, node, "d" * 64),
        ).fetchone()[0]
        notice = q(
            "insert into notices (user_id, kind, message, created_at) "
            "values (%s, 'info', 'hello', now()) returning id",
            (u["owner"],),
        ).fetchone()[0]
        token = q(
            "insert into api_tokens (user_id, name, prefix, token_hash, created_at) "
            "values (%s, 't', 'wl_', %s, now()) returning id",
            (u["owner"], "e" * 64),
        ).fetchone()[0]
        q(
            "insert into web_sessions (id_hash, user_id, created_at, last_seen_at, expires_at) "
            "values (%s, %s, now(), now(), now() + interval '1 day')",
            ("f" * 64, u["owner"]),
        )
        q(
            "insert into login_failures (username, address, failures, last_failed_at) "
            "values ('owner', '127.0.0.1', 1, now())"
        )
        q("insert into rate_limit_hits (key, at) values ('claim:owner', now())")
        q("insert into request_keys (key, created_at) values (%s, now())", ("9" * 64,))
        wake = q("insert into wowlab_wakeups (topic) values ('work') returning id").fetchone()[0]
        world.ids.update(
            guild=guild,
            node=node,
            pending=pending,
            grants=grants,
            job=job,
            chunk=chunk,
            lease=lease,
            notice=notice,
            token=token,
            wake=wake,
        )
    return world
