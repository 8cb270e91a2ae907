"""Idempotency keys of transport requests, kept in the database (``request_keys``).

A transport that delivers at least once (MQTT QoS 1, a node resending a request it got
no answer to, a request retried to another bridge or after a restart) gives each
request a key. The coordinator stores the key with the request's answer in the same
transaction as the request's effect, so:

- a key found already stored means the request was carried out: its stored answer is
  sent again (:class:`RequestRepeated`), nothing is done twice;
- two copies handled at once by two processes cannot both commit: the second one's
  insert of the key waits for the first transaction and then fails on the primary key,
  which rolls its effect back; it then answers with the first one's stored answer;
- a process that dies mid-request commits neither the effect nor the key: a repeat
  carries the request out.

Keys are sha256 hex digests (64 characters) of what identifies a request to its
transport (for MQTT: the Response Topic and the Correlation Data). Old keys are
deleted by :func:`purge` (a repeat comes within seconds or minutes; a day is plenty).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, col

from wowlab_core.db import read_session, session_is_postgres, write_session
from wowlab_core.errors import WowlabError
from wowlab_core.models import RequestKey, utcnow

#: How long keys are kept by default.
KEEP = timedelta(days=1)


def request_key(*parts: bytes | str) -> str:
    """The key of a request identified by ``parts`` (sha256 hex)."""
    digest = hashlib.sha256()
    for part in parts:
        data = part.encode("utf-8") if isinstance(part, str) else part
        digest.update(len(data).to_bytes(4, "big"))
        digest.update(data)
    return digest.hexdigest()


@dataclass(frozen=True)
class Keyed:
    """A request's key and how its answer is written (the transport's wire format):
    ``ok(result)`` for the operation's result, ``error(exc)`` for a refusal."""

    key: str
    ok: Callable[[Any], bytes]
    error: Callable[[WowlabError], bytes]


class RequestRepeated(Exception):
    """The request was carried out before (or by another process meanwhile)."""

    def __init__(self, reply: bytes | None) -> None:
        super().__init__("request already carried out")
        #: The stored answer (None: the request is still being carried out elsewhere).
        self.reply = reply


#: The statements, built once (building a statement costs more CPU than running it) and
#: run on the session's connection (the ORM's execute costs more than the query).
_TABLE: sa.Table = SQLModel.metadata.tables["request_keys"]
_STORED = sa.select(_TABLE.c.key, _TABLE.c.reply).where(
    _TABLE.c.key.in_(sa.bindparam("keys", expanding=True))
)
_INSERT = sa.insert(_TABLE)
_INSERT_NEW = {
    name: dialect.insert(_TABLE)
    .on_conflict_do_nothing(index_elements=["key"])
    .returning(_TABLE.c.key)
    for name, dialect in (("postgresql", postgresql), ("sqlite", sqlite))
}


def stored_replies(session: Session, keys: Collection[str]) -> dict[str, bytes | None]:
    """The stored answers of those of ``keys`` that were carried out."""
    if not keys:
        return {}
    rows = session.connection().execute(_STORED, {"keys": list(keys)})
    return {key: reply for key, reply in rows}


def record(session: Session, key: str, reply: bytes) -> None:
    """Store ``key`` with its answer in the current transaction (written now, so a
    concurrent copy of the request fails here, before anything commits).

    Raises:
        sqlalchemy.exc.IntegrityError: another copy of the request stored the key first.
    """
    session.connection().execute(_INSERT, {"key": key, "reply": reply, "created_at": utcnow()})


def record_many(session: Session, replies: Mapping[str, bytes]) -> set[str]:
    """Store many keys with their answers in one statement; a key another copy of its
    request stored first is left as it is. Returns the keys stored here."""
    if not replies:
        return set()
    insert = _INSERT_NEW["postgresql" if session_is_postgres(session) else "sqlite"]
    now = utcnow()
    rows = session.connection().execute(
        insert, [{"key": key, "reply": reply, "created_at": now} for key, reply in replies.items()]
    )
    return {r[0] for r in rows}


def lookup(db: Engine, key: str) -> bytes | None:
    """The answer stored for ``key`` (None if none)."""
    with read_session(db) as session:
        return stored_replies(session, [key]).get(key)


def purge(db: Engine, *, older_than: timedelta = KEEP) -> int:
    """Delete keys older than ``older_than``. Returns how many."""
    with write_session(db) as session:
        result = session.execute(
            sa.delete(RequestKey).where(col(RequestKey.created_at) < utcnow() - older_than)
        )
        session.commit()
    return int(result.rowcount)  # type: ignore[attr-defined]


__all__ = [
    "KEEP",
    "Keyed",
    "RequestRepeated",
    "lookup",
    "purge",
    "record",
    "record_many",
    "request_key",
    "stored_replies",
]
