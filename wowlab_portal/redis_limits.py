"""Rate limits in Redis (or Valkey), for portals that have one: ``WOWLAB_REDIS_URL``.

The same sliding window as :class:`~wowlab_core.rate_limits.DatabaseRateLimiter`, kept
in a sorted set per key and counted by one Lua script (atomic on the server, one round
trip, the server's clock), so a limit holds across every worker and host that uses the
same Redis.
"""

from __future__ import annotations

import math
import uuid
from typing import Any

from wowlab_core.claim_codes import RateLimiter
from wowlab_core.errors import RateLimited

#: KEYS[1]: the sorted set; ARGV: window (ms), limit, a unique member.
_HIT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local window = tonumber(ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[2]) then
  local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')
  return tonumber(oldest[2]) + window - now
end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], window)
return -1
"""


class RedisRateLimiter(RateLimiter):
    """A sliding-window limit per key, kept in Redis (shared by every process)."""

    def __init__(self, client: Any, *, name: str, limit: int, window_seconds: float) -> None:
        super().__init__(limit=limit, window_seconds=window_seconds)
        self.name = name
        self._script = client.register_script(_HIT)

    def hit(self, key: str, *, what: str = "attempts") -> None:
        """Count one attempt for ``key``.

        Raises:
            RateLimited: ``limit`` attempts were already made within the window.
        """
        left_ms = int(
            self._script(
                keys=[f"wowlab:ratelimit:{self.name}:{key}"],
                args=[math.ceil(self.window * 1000), self.limit, uuid.uuid4().hex],
            )
        )
        if left_ms >= 0:
            raise RateLimited(
                f"too many {what}; try again in {max(1, math.ceil(left_ms / 1000))} s"
            )


def redis_client(url: str) -> Any:
    """A client for ``redis://`` / ``rediss://`` ``url`` (the ``redis`` package)."""
    try:
        import redis
    except ImportError:  # pragma: no cover - depends on the install
        from wowlab_core.errors import InvalidRequest

        raise InvalidRequest(
            "WOWLAB_REDIS_URL is set but the redis package is not installed: "
            "pip install 'wowlab[redis]'",
            field="redis_url",
        ) from None
    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


__all__ = ["RedisRateLimiter", "redis_client"]
