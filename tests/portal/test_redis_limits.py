"""Rate limits in Redis (``WOWLAB_REDIS_URL``), against the real server: shared by every
client, exact under concurrent attempts, chosen by the portal when configured."""

from __future__ import annotations

import os
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy.engine import Engine

from wowlab_core.errors import RateLimited
from wowlab_core.testing.databases import missing_part
from wowlab_portal.app import make_limiter
from wowlab_portal.redis_limits import RedisRateLimiter, redis_client
from wowlab_portal.settings import PortalSettings

REDIS_URL = os.environ.get("WOWLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


@pytest.fixture
def redis_url() -> str:
    import redis

    try:
        redis_client(REDIS_URL).ping()
    except redis.RedisError as exc:
        missing_part("Redis", f"{REDIS_URL}: {exc}")
    return REDIS_URL


def limiter(url: str, name: str, limit: int, window: float) -> RedisRateLimiter:
    return RedisRateLimiter(redis_client(url), name=name, limit=limit, window_seconds=window)


def test_a_redis_limit_is_shared_by_every_client_and_slides(redis_url: str) -> None:
    name = f"test-{uuid.uuid4().hex[:8]}"
    one, two = limiter(redis_url, name, 2, 0.5), limiter(redis_url, name, 2, 0.5)
    one.hit("user:1")
    two.hit("user:1")
    with pytest.raises(RateLimited, match=r"too many claim attempts; try again in 1 s"):
        one.hit("user:1", what="claim attempts")
    two.hit("user:2")
    time.sleep(0.6)
    one.hit("user:1")


def test_concurrent_attempts_pass_exactly_the_limit(redis_url: str) -> None:
    name = f"burst-{uuid.uuid4().hex[:8]}"
    limiters = [limiter(redis_url, name, 10, 60) for _ in range(4)]
    passed = 0
    lock = threading.Lock()

    def attempt(i: int) -> None:
        nonlocal passed
        try:
            limiters[i % 4].hit("address:10.0.0.9")
        except RateLimited:
            return
        with lock:
            passed += 1

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(attempt, range(50)))
    assert passed == 10


def test_the_portal_counts_in_redis_when_configured(redis_url: str, sqlite_db: Engine) -> None:
    settings = PortalSettings(database_url="sqlite://", redis_url=redis_url)
    made: Any = make_limiter(settings, sqlite_db, name="claim_user", limit=3)
    assert isinstance(made, RedisRateLimiter)
    plain = make_limiter(PortalSettings(database_url="sqlite://"), sqlite_db, name="x", limit=3)
    assert type(plain).__name__ == "RateLimiter"  # SQLite alone: one process, in memory
