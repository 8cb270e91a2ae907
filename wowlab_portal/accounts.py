"""Portal accounts: users with argon2 password hashes, and personal API tokens.

Passwords are hashed with pwdlib's argon2id. API tokens look like ``wl_<43 characters>``;
only their sha256 is stored (a token is high-entropy, so a slow hash buys nothing), and
the plain token is shown once, when it is made.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from datetime import timedelta

from pwdlib import PasswordHash
from pwdlib.hashers.argon2 import Argon2Hasher
from sqlalchemy import func
from sqlmodel import Session, col, select

from wowlab_core.errors import AuthenticationFailed, InvalidRequest, NotFound
from wowlab_core.models import ApiToken, User, utcnow
from wowlab_core.scheduler import hash_token
from wowlab_portal.web_sessions import end_all_sessions

TOKEN_PREFIX = "wl_"
MAX_TOKENS_PER_USER = 50
USERNAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{1,31}")
MIN_PASSWORD = 8
MAX_PASSWORD = 256
#: How stale ``last_used_at`` may get before a use writes it again.
LAST_USED_RESOLUTION = timedelta(minutes=10)


def password_hasher(*, time_cost: int = 3, memory_kib: int = 65536) -> PasswordHash:
    """An argon2id hasher (the defaults are argon2-cffi's, RFC 9106's second choice)."""
    return PasswordHash((Argon2Hasher(time_cost=time_cost, memory_cost=memory_kib),))


@dataclass(frozen=True)
class NewToken:
    """A token row and the plain token (the only time it is known)."""

    row: ApiToken
    token: str


def check_username(username: str) -> str:
    """The username if it is well formed, else :class:`InvalidRequest` naming the rule."""
    if not isinstance(username, str) or not USERNAME.fullmatch(username):
        raise InvalidRequest(
            "a username is 2 to 32 letters, digits, '_', '.' or '-', starting with a letter "
            "or digit",
            field="username",
        )
    return username


def check_password(password: str, *, field: str = "password") -> str:
    """The password if it is long enough (and not absurdly long), else
    :class:`InvalidRequest` naming ``field``."""
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidRequest(
            f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters", field=field
        )
    return password


def find_user(session: Session, *, username: str) -> User | None:
    """The user of that name (case-insensitive), or None."""
    return session.exec(
        select(User).where(func.lower(col(User.username)) == username.lower())
    ).first()


def user_by_name(session: Session, *, username: str, field: str = "username") -> User:
    """The user of that name, else :class:`NotFound`."""
    user = find_user(session, username=username)
    if user is None:
        raise NotFound(f"no user named {username!r}", field=field)
    return user


def create_user(
    session: Session,
    *,
    username: str,
    password: str | None,
    passwords: PasswordHash,
    email: str | None = None,
    is_admin: bool = False,
) -> User:
    """A new account. Without a password, it can only use API tokens. Does not commit."""
    check_username(username)
    if password is not None:
        check_password(password)
    if find_user(session, username=username) is not None:
        raise InvalidRequest(f"the username {username!r} is taken", field="username")
    user = User(
        username=username,
        email=email,
        password_hash=passwords.hash(password) if password is not None else None,
        is_admin=is_admin,
    )
    session.add(user)
    session.flush()
    return user


def authenticate_user(
    session: Session, *, username: str, password: str, passwords: PasswordHash
) -> User:
    """The user whose name and password these are.

    Raises:
        AuthenticationFailed: unknown user or wrong password (the same message for both).
    """
    user = find_user(session, username=username) if isinstance(username, str) else None
    if user is None or user.password_hash is None:
        # Spend the same time as a real check, so timing does not reveal the username.
        passwords.verify(password, _dummy_hash(passwords))
        raise AuthenticationFailed("wrong username or password")
    valid, updated = passwords.verify_and_update(password, user.password_hash)
    if not valid:
        raise AuthenticationFailed("wrong username or password")
    if updated is not None:  # the hasher's parameters changed: store the stronger hash
        user.password_hash = updated
        session.add(user)
    return user


def set_password(session: Session, *, user: User, password: str, passwords: PasswordHash) -> None:
    """Give ``user`` a new password and end all their browser sessions (whoever held one
    must log in again with the new password). API tokens stay valid. Does not commit."""
    check_password(password, field="new_password")
    user.password_hash = passwords.hash(password)
    session.add(user)
    end_all_sessions(session, user=user)


def change_password(
    session: Session, *, user: User, current: str, new: str, passwords: PasswordHash
) -> None:
    """Change ``user``'s password after checking the current one. Does not commit.

    Raises:
        AuthenticationFailed: the current password is wrong (field ``current_password``).
        InvalidRequest: the new one breaks the rules (field ``new_password``).
    """
    check_password(new, field="new_password")
    if user.password_hash is None or not passwords.verify(current, user.password_hash):
        raise AuthenticationFailed("the current password is wrong", field="current_password")
    set_password(session, user=user, password=new, passwords=passwords)


def generate_password() -> str:
    """A random password of 20 URL-safe characters (about 120 bits)."""
    return secrets.token_urlsafe(15)


_DUMMY: dict[int, str] = {}


def _dummy_hash(passwords: PasswordHash) -> str:
    key = id(passwords)
    if key not in _DUMMY:
        _DUMMY[key] = passwords.hash(secrets.token_urlsafe(16))
    return _DUMMY[key]


def create_api_token(
    session: Session, *, user: User, name: str, lifetime: timedelta | None = None
) -> NewToken:
    """A new personal API token for ``user``, refused after ``lifetime`` if one is given.
    Does not commit."""
    name = name.strip() if isinstance(name, str) else ""
    if not 1 <= len(name) <= 100:
        raise InvalidRequest("a token name is 1 to 100 characters", field="name")
    count = session.exec(
        select(func.count()).select_from(ApiToken).where(col(ApiToken.user_id) == user.id)
    ).one()
    if count >= MAX_TOKENS_PER_USER:
        raise InvalidRequest(
            f"you have {MAX_TOKENS_PER_USER} tokens already; revoke one first", field="name"
        )
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(
        user_id=user.id or 0,
        name=name,
        prefix=token[:8],
        token_hash=hash_token(token),
        expires_at=utcnow() + lifetime if lifetime is not None else None,
    )
    session.add(row)
    session.flush()
    return NewToken(row=row, token=token)


def list_api_tokens(session: Session, *, user: User) -> list[ApiToken]:
    """A user's tokens, oldest first."""
    return list(
        session.exec(
            select(ApiToken).where(col(ApiToken.user_id) == user.id).order_by(col(ApiToken.id))
        ).all()
    )


def revoke_api_token(session: Session, *, user: User, token_id: int) -> None:
    """Delete one of the user's tokens (another user's token is :class:`NotFound`)."""
    row = session.get(ApiToken, token_id)
    if row is None or row.user_id != user.id:
        raise NotFound(f"you have no token with id {token_id}", field="token_id")
    session.delete(row)


def user_for_token(session: Session, *, token: str) -> tuple[User, ApiToken]:
    """The user an API token belongs to.

    Raises:
        AuthenticationFailed: not a token of this portal, revoked, or expired.
    """
    if not token.startswith(TOKEN_PREFIX):
        raise AuthenticationFailed(
            f"not a user API token (they start with {TOKEN_PREFIX!r})", field="Authorization"
        )
    row = session.exec(
        select(ApiToken).where(col(ApiToken.token_hash) == hash_token(token))
    ).first()
    user = session.get(User, row.user_id) if row is not None else None
    if row is None or user is None:
        raise AuthenticationFailed("this API token is not valid (revoked?)", field="Authorization")
    if row.expires_at is not None and row.expires_at <= utcnow():
        raise AuthenticationFailed(
            f"this API token expired at {row.expires_at:%Y-%m-%d %H:%M} UTC; make a new one",
            field="Authorization",
        )
    return user, row


def token_needs_touch(row: ApiToken) -> bool:
    """Whether ``last_used_at`` is stale enough to be written again."""
    return row.last_used_at is None or utcnow() - row.last_used_at > LAST_USED_RESOLUTION


__all__ = [
    "TOKEN_PREFIX",
    "NewToken",
    "authenticate_user",
    "change_password",
    "check_password",
    "check_username",
    "create_api_token",
    "create_user",
    "find_user",
    "generate_password",
    "list_api_tokens",
    "password_hasher",
    "revoke_api_token",
    "set_password",
    "token_needs_touch",
    "user_by_name",
    "user_for_token",
]
