"""Public read-only links to a job's report.

The owner makes a link; anyone holding it reads the job's report without logging in. The
token is 32 random bytes (``secrets.token_urlsafe``); only its sha256 is stored, like every
other token (:mod:`wowlab_core.tokens`), so the link is shown once, when it is made. A job
has at most one link: making a new one replaces the old one, revoking it ends it.
"""

from __future__ import annotations

import re
import secrets
from datetime import datetime

from sqlmodel import Session, col, select

from wowlab_core.models import SimJob, utcnow
from wowlab_core.tokens import hash_token

#: What a link token looks like (43 URL-safe characters for 32 bytes; a little slack).
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{20,100}$")


def create_share_link(session: Session, *, job: SimJob, now: datetime | None = None) -> str:
    """Make ``job``'s public link (replacing an earlier one) and return its token.

    Does not commit. The token is not stored: the caller shows it to the owner once.
    """
    token = secrets.token_urlsafe(32)
    job.share_token_hash = hash_token(token)
    job.shared_at = now or utcnow()
    session.add(job)
    return token


def revoke_share_link(session: Session, *, job: SimJob) -> bool:
    """End ``job``'s public link; False if it had none. Does not commit."""
    if job.share_token_hash is None:
        return False
    job.share_token_hash = None
    job.shared_at = None
    session.add(job)
    return True


def shared_job(session: Session, *, token: str) -> SimJob | None:
    """The job a link token opens, or None (unknown, revoked or malformed token)."""
    if not isinstance(token, str) or not TOKEN_PATTERN.match(token):
        return None
    # Found by its hash through an index: the timing of the lookup tells nothing useful,
    # since nobody can choose a token whose hash shares a prefix with a stored one.
    return session.exec(
        select(SimJob).where(col(SimJob.share_token_hash) == hash_token(token))
    ).first()


__all__ = ["TOKEN_PATTERN", "create_share_link", "revoke_share_link", "shared_job"]
