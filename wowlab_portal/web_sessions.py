"""Browser sessions that end on the server.

Logging in makes a random session id. The signed session cookie carries it; the
``web_sessions`` table keeps only its sha256, with the user and an expiry. A request is
logged in while its id has a row: logging out deletes the row, changing the password or
"log out everywhere" deletes every row of the user, so a copied cookie stops working at
once (the cookie's signature alone proves nothing any more).
"""

from __future__ import annotations

import secrets
from datetime import timedelta

from sqlalchemy import delete
from sqlmodel import Session, col

from wowlab_core.models import User, WebSession, utcnow
from wowlab_core.scheduler import hash_token

#: How stale ``last_seen_at`` may get before a request writes it again.
LAST_SEEN_RESOLUTION = timedelta(minutes=10)


def start_session(session: Session, *, user: User, lifetime: timedelta) -> str:
    """A new session of ``user``; returns its id (for the cookie). Does not commit.

    Expired sessions (anyone's) are deleted on the way, so the table holds live ones only.
    """
    now = utcnow()
    session.execute(delete(WebSession).where(col(WebSession.expires_at) <= now))
    session_id = secrets.token_urlsafe(32)
    session.add(
        WebSession(
            id_hash=hash_token(session_id),
            user_id=user.id or 0,
            created_at=now,
            last_seen_at=now,
            expires_at=now + lifetime,
        )
    )
    return session_id


def session_user(session: Session, *, session_id: object) -> tuple[User, WebSession] | None:
    """The user of a live session id (None: unknown, ended or expired)."""
    if not isinstance(session_id, str) or not session_id:
        return None
    row = session.get(WebSession, hash_token(session_id))
    if row is None or row.expires_at <= utcnow():
        return None
    user = session.get(User, row.user_id)
    return (user, row) if user is not None else None


def needs_touch(row: WebSession) -> bool:
    """Whether ``last_seen_at`` is stale enough to be written again."""
    return utcnow() - row.last_seen_at > LAST_SEEN_RESOLUTION


def end_session(session: Session, *, session_id: object) -> None:
    """End one session (nothing if it is unknown). Does not commit."""
    if isinstance(session_id, str) and session_id:
        session.execute(delete(WebSession).where(col(WebSession.id_hash) == hash_token(session_id)))


def end_all_sessions(session: Session, *, user: User) -> int:
    """End every session of ``user``; returns how many there were. Does not commit."""
    result = session.execute(delete(WebSession).where(col(WebSession.user_id) == user.id))
    return int(getattr(result, "rowcount", 0) or 0)


__all__ = [
    "end_all_sessions",
    "end_session",
    "needs_touch",
    "session_user",
    "start_session",
]
