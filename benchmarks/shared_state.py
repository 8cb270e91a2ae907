"""What sharing state through PostgreSQL costs, per operation, against the same-run baseline
of doing without it:

- ``heartbeat``: one node's heartbeat through the coordinator, alone (the baseline: one
  transaction per heartbeat, as a portal worker does it), with an idempotency key stored
  in the same transaction (what a bridge adds), and in batches of 8, 32 and 64 heartbeats of
  different nodes per transaction (what a bridge does under load). Per heartbeat.
- ``complete``: the same for results (lease 1 chunk, complete it), alone and in batches.
- ``rate limit``: one counted attempt, in memory (the baseline), in PostgreSQL, in Redis.
- ``wake-up``: NOTIFY in one process to the callback in another (p50/p99).

Usage: ``python benchmarks/shared_state.py [--rounds 400]`` (PostgreSQL from
``WOWLAB_TEST_POSTGRES_URL``, Redis from ``WOWLAB_TEST_REDIS_URL``).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transport import TOY, claimed_nodes, make_hooks, percentile, submit

from wowlab_core.claim_codes import RateLimiter
from wowlab_core.coordinator import Coordinator, CoordinatorSettings
from wowlab_core.db import create_db_engine
from wowlab_core.protocol import Completion, Heartbeat, NodeCredentials
from wowlab_core.rate_limits import DatabaseRateLimiter
from wowlab_core.request_keys import Keyed, request_key
from wowlab_core.testing.databases import fresh_postgres_database
from wowlab_core.testing.toy_engine import ToyEngine
from wowlab_core.wakeups import CLAIMED, Wakeups

SETTINGS = CoordinatorSettings(lease_seconds=600.0, heartbeat_seconds=15.0)


def keyed() -> Keyed:
    return Keyed(request_key(uuid.uuid4().hex), ok=lambda r: b"ok", error=lambda e: b"error")


def per_op(fn: Callable[[], int], rounds: int) -> float:
    """Milliseconds per operation: ``fn()`` does some operations and returns how many."""
    done, started = 0, time.perf_counter()
    while done < rounds:
        done += fn()
    return 1000 * (time.perf_counter() - started) / done


def heartbeats(c: Coordinator, nodes: list[NodeCredentials], rounds: int) -> dict[str, float]:
    i = iter(range(10**9))

    def alone() -> int:
        c.heartbeat(nodes[next(i) % len(nodes)], Heartbeat())
        return 1

    def alone_keyed() -> int:
        c.heartbeat(nodes[next(i) % len(nodes)], Heartbeat(), keyed=keyed())
        return 1

    def batch(size: int) -> Callable[[], int]:
        def run() -> int:
            start = next(i) * size
            items = [(nodes[(start + k) % len(nodes)], Heartbeat(), keyed()) for k in range(size)]
            c.heartbeat_batch(items)
            return size

        return run

    out = {"alone": per_op(alone, rounds), "alone + key": per_op(alone_keyed, rounds)}
    for size in (8, 32, 64):
        out[f"batch {size}"] = per_op(batch(size), rounds)
    return out


def completes(
    db: Any, c: Coordinator, nodes: list[NodeCredentials], rounds: int
) -> dict[str, float]:
    engine = ToyEngine()
    prepared = engine.prepare(TOY)
    hooks = c.hooks

    def results(leases: list[Any]) -> list[Completion]:
        return [
            Completion(
                le.chunk_id,
                le.lease_token,
                engine.run_chunk(
                    prepared, seed=le.seed, seed_offset=le.seed_offset, iterations=le.iterations
                ).to_dict(),
            )
            for le in leases
        ]

    out: dict[str, float] = {}
    for size in (1, 8, 32, 64):
        submit(db, hooks, rounds + size)
        taken = [(n, c.lease(n, 1)) for n in nodes[: rounds + size]]
        work = [(n, results(ls)) for n, ls in taken if ls]
        pos = 0

        def run(size: int = size, work: list[Any] = work) -> int:
            nonlocal pos
            part = work[pos : pos + size]
            pos += size
            if size == 1:
                c.complete(part[0][0], part[0][1])
            else:
                c.complete_batch([(n, r, keyed()) for n, r in part])
            return len(part)

        out["alone" if size == 1 else f"batch {size}"] = per_op(run, rounds)
    return out


def limits(db: Any, rounds: int) -> dict[str, float]:
    out = {
        "memory": per_op(lambda: RateLimiter(limit=10**9, window_seconds=60).hit("k") or 1, rounds),
    }
    pg = DatabaseRateLimiter(db, name="bench", limit=10**9, window_seconds=60)
    out["postgres"] = per_op(lambda: pg.hit(uuid.uuid4().hex[:8]) or 1, rounds)
    try:
        from wowlab_portal.redis_limits import RedisRateLimiter, redis_client

        client = redis_client(os.environ.get("WOWLAB_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"))
        client.ping()
        redis = RedisRateLimiter(client, name="bench", limit=10**9, window_seconds=60)
        out["redis"] = per_op(lambda: redis.hit(uuid.uuid4().hex[:8]) or 1, rounds)
    except Exception as exc:  # no Redis here: say so
        print(f"(redis: not measured: {exc})")
    return out


def wakeups(db: Any, rounds: int) -> tuple[float, float]:
    other = create_db_engine(db.url.render_as_string(hide_password=False))
    got = threading.Event()
    delays: list[float] = []
    sent_at = 0.0

    def received(_payload: str) -> None:
        delays.append(time.perf_counter() - sent_at)
        got.set()

    with Wakeups(db) as here, Wakeups(other) as there:
        there.subscribe(CLAIMED, received)
        for n in range(min(rounds, 200)):
            got.clear()
            sent_at = time.perf_counter()
            here.publish(CLAIMED, str(n))
            got.wait(5)
    other.dispose()
    return 1000 * percentile(delays, 0.5), 1000 * percentile(delays, 0.99)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--rounds", type=int, default=400)
    args = p.parse_args(argv)
    print(
        f"{platform.node()}: {os.cpu_count()} cores, load {os.getloadavg()[0]:.2f} "
        f"(1-min average), Python {platform.python_version()}"
    )
    with fresh_postgres_database() as db:
        hooks = make_hooks()
        c = Coordinator(db, hooks=hooks, settings=SETTINGS)
        nodes = claimed_nodes(db, max(args.rounds + 64, 128))
        beats = heartbeats(c, nodes, args.rounds)
        print("heartbeat, ms each: " + ", ".join(f"{k} {v:.2f}" for k, v in beats.items()))
        done = completes(db, c, nodes, args.rounds)
        print("complete, ms each:  " + ", ".join(f"{k} {v:.2f}" for k, v in done.items()))
        limit = limits(db, args.rounds)
        print("rate limit, ms each: " + ", ".join(f"{k} {v:.3f}" for k, v in limit.items()))
        p50, p99 = wakeups(db, args.rounds)
        print(f"wake-up across processes: p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print(
        f"shared state: heartbeat {beats['alone']:.2f} ms alone, +"
        f"{beats['alone + key'] - beats['alone']:.2f} ms with a key, "
        f"{beats['batch 32']:.2f} ms in batches of 32 "
        f"({beats['alone'] / beats['batch 32']:.1f}x); complete {done['alone']:.2f} -> "
        f"{done['batch 32']:.2f} ms; limit in postgres {limit['postgres']:.2f} ms; "
        f"wake-up p50 {p50:.1f} ms"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
