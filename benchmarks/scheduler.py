"""Scheduler throughput: lease+complete operations per second on SQLite and PostgreSQL.

One op is one chunk leased and completed. Simulated nodes loop ``lease(batch)`` ->
``complete(batch)`` through the real :class:`wowlab_core.coordinator.Coordinator` (token
check, ``mark_seen``, the reaper, ``lease_chunks``, ``complete_chunks``, job finalizing)
until no chunk is left. Results are precomputed, valid, minimal ``ChunkResult`` dicts, so
the figures measure the scheduler, not an engine.

Nodes are threads in one process by default: that is what a portal process serving many
nodes does (its request handlers share one interpreter). ``--processes N`` spreads the
nodes over N processes (N portal workers) to show what the GIL costs.

The baseline is the first row of the run (by default SQLite, 1 node, batch 1; column
``x base``); ``x b1`` compares a batched row with batch 1 on the same database and node
count. Batch-1 rows use ``--baseline-chunks`` (default 1,000) chunks so that a full run
stays within a few minutes on 2 cores; pass ``--baseline-chunks 10000`` for the full figure.
Each run checks that every chunk was accepted exactly once, leased once, and that the job's
``completed_iterations`` and report add up (column ``check``); any failure exits 1.

Usage::

    python benchmarks/scheduler.py                 # full run (2-4 min on 2 busy cores)
    python benchmarks/scheduler.py --quick         # smoke run (~30 s)
    python benchmarks/scheduler.py --databases postgres --nodes 1 --batch 50 --statements
    python benchmarks/scheduler.py --databases postgres --batch 50,256 --nodes 8 --processes 2
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import multiprocessing
import os
import platform
import pstats
import re
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, func, select

from wowlab_core.access import set_access
from wowlab_core.coordinator import Coordinator, CoordinatorSettings
from wowlab_core.db import create_db_engine, is_postgres, write_session
from wowlab_core.hookspecs import hookimpl
from wowlab_core.jobs import submit_job
from wowlab_core.models import (
    AccessType,
    ChunkLease,
    ChunkStatus,
    JobStatus,
    SimChunk,
    SimJob,
    User,
)
from wowlab_core.nodes import claim_node
from wowlab_core.plugins import Hooks, build_registry
from wowlab_core.protocol import Completion, NodeCredentials, NodeInfo, Outcome
from wowlab_core.results import ChunkResult
from wowlab_core.testing.toy_engine import toy_engine_plugin

GOAL_OPS = 5_000
#: Runs with smaller batches use ``--baseline-chunks`` (they are 20-50x slower).
BIG_BATCH = 10
ITERATIONS_PER_CHUNK = 100
VALUE = 1_000_000  # 1,000.000 dps in the fixed-point scale of ChunkResult


# --- set-up -------------------------------------------------------------------------------


class _FinishProbe:
    """Tells the nodes when a job ended (the coordinator's finisher merged it)."""

    #: Set when a job ends: with verification, nodes keep asking until then (a check may
    #: still be due after the last pending chunk was leased).
    ended = threading.Event()

    @hookimpl
    def wowlab_job_finished(self, job: SimJob) -> None:
        self.ended.set()


def make_hooks() -> Hooks:
    """Built-in plugins + the toy engine + the finish probe, no entry points."""
    registry = build_registry(load_entry_points=False)
    registry.pm.register(toy_engine_plugin, name="toy-engine")
    registry.pm.register(_FinishProbe(), name="bench-finish-probe")
    return Hooks(registry.pm)


@contextlib.contextmanager
def open_database(kind: str, directory: str) -> Iterator[Engine]:
    """A fresh database with wowlab's schema: a SQLite file, or a new PostgreSQL database."""
    from wowlab_core.testing.databases import fresh_postgres_database, fresh_sqlite_database

    if kind == "sqlite":
        with fresh_sqlite_database(directory) as engine:
            yield engine
        return
    import pytest  # fresh_postgres_database reports a missing server with pytest.skip

    try:
        cm = fresh_postgres_database()
        engine = cm.__enter__()
    except pytest.skip.Exception as exc:
        raise DatabaseMissing(str(exc)) from None
    try:
        yield engine
    finally:
        cm.__exit__(None, None, None)


class DatabaseMissing(Exception):
    """The PostgreSQL server is not reachable."""


@dataclass
class Fixture:
    """What a run needs: the job, the nodes' credentials and one valid result per chunk."""

    job_id: int
    creds: list[NodeCredentials]
    results: dict[int, dict[str, Any]]  # chunk id -> result dict
    chunks: int
    total_iterations: int


def set_up(
    engine: Engine, hooks: Hooks, *, nodes: int, chunks: int, batch: int, shared: bool = False
) -> Fixture:
    """A user, ``nodes`` claimed nodes and one toy job of ``chunks`` chunks.

    Each node has ``batch`` workers (a node never holds more leases than that). With
    ``shared``, every other node belongs to a friend of the submitter who shares it with
    them by name: their results are subject to verification.
    """
    coordinator = Coordinator(engine, hooks=hooks)
    with write_session(engine) as session:
        user = User(username="bench")
        helper = User(username="helper")
        session.add(user)
        session.add(helper)
        session.commit()
        user_id, helper_id = user.id, helper.id
    creds = []
    for i in range(nodes):
        reg = coordinator.register(NodeInfo(name=f"bench-{i}", max_parallel=max(batch, 1)))
        foreign = shared and i % 2 == 1
        with write_session(engine) as session:
            owner = session.get(User, helper_id if foreign else user_id)
            assert owner is not None
            node = claim_node(session, user=owner, code=reg.claim_code)
            if foreign:
                set_access(session, node=node, grants=[(AccessType.USER, user_id)])
            session.commit()
        creds.append(NodeCredentials(node_id=reg.node_id, token=reg.token))
    with write_session(engine) as session:
        owner = session.get(User, user_id)
        assert owner is not None
        job = submit_job(
            session,
            user=owner,
            config={"base_dps": 1000},
            iterations=chunks * ITERATIONS_PER_CHUNK,
            engine_name="toy",
            seed=1,
            hooks=hooks,
            chunks=chunks,
        )
        session.commit()
        job_id = job.id
        total = job.total_iterations
        rows = session.exec(
            select(SimChunk.id, SimChunk.seed_offset, SimChunk.iterations).where(
                SimChunk.job_id == job_id
            )
        ).all()
    assert job_id is not None
    results = {
        cid: ChunkResult.from_values([VALUE] * iters, seed_offset=off).to_dict()
        for cid, off, iters in rows
    }
    return Fixture(job_id, creds, results, len(rows), total)


# --- the node loop ------------------------------------------------------------------------


@dataclass
class NodeStats:
    """What one simulated node did."""

    lease_calls: int = 0
    lease_s: float = 0.0
    complete_calls: int = 0
    complete_s: float = 0.0
    done_at: list[tuple[float, int]] = field(default_factory=list)  # (time, chunks accepted)
    end: float = 0.0
    outcomes: Counter[str] = field(default_factory=Counter)
    accepted: list[int] = field(default_factory=list)
    error: str | None = None
    profile: bytes | None = None


def node_loop(
    coordinator: Coordinator,
    creds: NodeCredentials,
    batch: int,
    results: dict[int, dict[str, Any]],
    barrier: Any,
    profile: bool,
    until_ended: bool = False,
) -> NodeStats:
    """lease(batch) -> complete(batch) until the coordinator has nothing left to lease
    (``until_ended``: until the job has ended)."""
    stats = NodeStats()
    profiler = cProfile.Profile(time.process_time) if profile else None
    barrier.wait()
    if profiler:
        profiler.enable()
    try:
        while True:
            t0 = time.perf_counter()
            leases = coordinator.lease(creds, batch)
            t1 = time.perf_counter()
            stats.lease_calls += 1
            stats.lease_s += t1 - t0
            if not leases:
                if until_ended and not _FinishProbe.ended.is_set():
                    time.sleep(0.002)  # a verification may still be due
                    continue
                break
            completions = [
                Completion(
                    chunk_id=lease.chunk_id,
                    lease_token=lease.lease_token,
                    result=results[lease.chunk_id],
                    elapsed_seconds=0.001 * lease.iterations,
                )
                for lease in leases
            ]
            t2 = time.perf_counter()
            outcomes = coordinator.complete(creds, completions)
            t3 = time.perf_counter()
            stats.complete_calls += 1
            stats.complete_s += t3 - t2
            accepted = 0
            for outcome in outcomes:
                stats.outcomes[outcome.outcome] += 1
                if outcome.outcome == Outcome.ACCEPTED.value:
                    stats.accepted.append(outcome.chunk_id)
                    accepted += 1
            stats.done_at.append((t3, accepted))
    except Exception as exc:  # reported in the check column
        message = str(exc).split(" (Background on this error")[0].splitlines()[0]
        stats.error = f"{type(exc).__name__}: {message}"[:200]
    finally:
        stats.end = time.perf_counter()
        if profiler:
            profiler.disable()
            stats.profile = _dump_profile(profiler)
    return stats


def settle(coordinator: Coordinator) -> None:
    """Wait for the coordinator's finisher (a wowlab_core from before the finisher, run
    with PYTHONPATH as a baseline, merged inside the last call: nothing to wait for)."""
    wait = getattr(coordinator, "settle", None)
    if wait is not None:
        wait()


def _dump_profile(profiler: cProfile.Profile) -> bytes:
    with tempfile.NamedTemporaryFile(suffix=".prof", delete=False) as f:
        path = f.name
    profiler.dump_stats(path)
    data = Path(path).read_bytes()
    os.unlink(path)
    return data


def run_threads(
    coordinator: Coordinator,
    creds: list[NodeCredentials],
    batch: int,
    results: dict[int, dict[str, Any]],
    barrier: Any,
    profile: bool,
    until_ended: bool = False,
) -> list[NodeStats]:
    """One thread per node; ``barrier`` also holds the caller (the clock starts there)."""
    out: list[NodeStats | None] = [None] * len(creds)

    def target(i: int) -> None:
        out[i] = node_loop(coordinator, creds[i], batch, results, barrier, profile, until_ended)

    threads = [threading.Thread(target=target, args=(i,), daemon=True) for i in range(len(creds))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return [s for s in out if s is not None]


def _process_main(
    url: str,
    creds: list[NodeCredentials],
    batch: int,
    results: dict[int, dict[str, Any]],
    shared_barrier: Any,
    queue: Any,
    profile: bool,
) -> None:
    """A portal worker process: its own engine and coordinator, one thread per node."""
    engine = create_db_engine(url)
    coordinator = Coordinator(engine, hooks=make_hooks())
    # The last local thread to arrive waits on the shared barrier for all of them.
    barrier = threading.Barrier(len(creds), action=shared_barrier.wait)
    cpu0 = time.process_time()
    stats = run_threads(coordinator, creds, batch, results, barrier, profile)
    settle(coordinator)  # the merge, if this process counted the last result
    queue.put((stats, time.process_time() - cpu0))
    engine.dispose()


# --- PostgreSQL's own floor ------------------------------------------------------------------

#: What a lease call does, as one plain SQL statement: pick ``batch`` pending chunks of the
#: job in seed order (skipping locked rows), lease them, and write their lease history.
FLOOR_LEASE_SQL = """
WITH picked AS MATERIALIZED (
    SELECT id FROM sim_chunks
    WHERE job_id = %(job)s AND status = 'pending'
    ORDER BY job_id, seed_offset LIMIT %(n)s FOR UPDATE SKIP LOCKED
), leased AS (
    UPDATE sim_chunks c
    SET status = 'leased', node_id = %(node)s, attempts = c.attempts + 1,
        lease_token_hash = %(hash)s, leased_at = now(),
        lease_expires_at = now() + interval '60 seconds',
        lease_deadline_at = now() + interval '600 seconds', progress = 0
    FROM picked WHERE c.id = picked.id
    RETURNING c.id
)
INSERT INTO chunk_leases (chunk_id, node_id, token_hash, leased_at)
SELECT id, %(node)s, %(hash)s, now() FROM leased
RETURNING chunk_id
"""
#: What a complete call does: store the results of chunks this node holds under this
#: token, in one statement; then the job's count, in a transaction of its own.
FLOOR_COMPLETE_SQL = """
UPDATE sim_chunks c
SET status = 'completed', result = v.result, computed_by = %(node)s, completed_at = now(),
    lease_token_hash = NULL, lease_expires_at = NULL, lease_deadline_at = NULL
FROM unnest(%(ids)s::int[], %(results)s::jsonb[]) AS v(id, result)
WHERE c.id = v.id AND c.status = 'leased' AND c.node_id = %(node)s
  AND c.lease_token_hash = %(hash)s
RETURNING c.iterations
"""
FLOOR_COUNT_SQL = (
    "UPDATE sim_jobs SET completed_iterations = completed_iterations + %(n)s WHERE id = %(job)s"
)
#: The node's credentials, checked once per call.
FLOOR_AUTH_SQL = "SELECT token_hash, user_id, status FROM nodes WHERE id = %(node)s"


def run_floor(url: str, fx: Fixture, *, batch: int, processes: int) -> tuple[float, str]:
    """PostgreSQL's own floor for this case: the scheduler's essential statements as
    plain SQL (psycopg, no ORM, no scheduler logic), the same nodes, batch and chunks, on
    a copy of the case's freshly submitted job. Returns ops/s and a check."""
    import psycopg
    from psycopg.types.json import Jsonb

    dsn = url.replace("postgresql+psycopg://", "postgresql://")

    def node_main(node_id: int, barrier: Any, out: list[Any]) -> None:
        done = 0
        token_hash = f"{node_id:064x}"
        with psycopg.connect(dsn, autocommit=False) as conn:
            barrier.wait()
            while True:
                with conn.cursor() as cur:
                    cur.execute(FLOOR_AUTH_SQL, {"node": node_id})
                    cur.fetchone()
                    cur.execute(
                        FLOOR_LEASE_SQL,
                        {"job": fx.job_id, "n": batch, "node": node_id, "hash": token_hash},
                    )
                    ids = [r[0] for r in cur.fetchall()]
                conn.commit()
                if not ids:
                    break
                with conn.cursor() as cur:
                    cur.execute(FLOOR_AUTH_SQL, {"node": node_id})
                    cur.fetchone()
                    cur.execute(
                        FLOOR_COMPLETE_SQL,
                        {
                            "ids": ids,
                            "results": [Jsonb(fx.results[i]) for i in ids],
                            "node": node_id,
                            "hash": token_hash,
                        },
                    )
                    n = sum(r[0] for r in cur.fetchall())
                    conn.commit()
                    cur.execute(FLOOR_COUNT_SQL, {"n": n, "job": fx.job_id})
                conn.commit()
                done += len(ids)
        out.append((time.perf_counter(), done))

    def threads_main(node_ids: list[int], shared: Any, queue: Any | None) -> list[Any]:
        out: list[Any] = []
        local = threading.Barrier(len(node_ids), action=shared.wait)
        threads = [
            threading.Thread(target=node_main, args=(n, local, out), daemon=True) for n in node_ids
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if queue is not None:
            queue.put(out)
        return out

    node_ids = [c.node_id for c in fx.creds]
    if processes == 1:
        shared = threading.Barrier(2)
        box: list[list[Any]] = []
        runner = threading.Thread(target=lambda: box.append(threads_main(node_ids, shared, None)))
        runner.start()
        shared.wait()
        start = time.perf_counter()
        runner.join()
        ends = box[0]
    else:
        ctx = multiprocessing.get_context("fork")
        groups = [g for g in (node_ids[i::processes] for i in range(processes)) if g]
        shared = ctx.Barrier(len(groups) + 1)
        queue = ctx.Queue()
        procs = [ctx.Process(target=threads_main, args=(g, shared, queue)) for g in groups]
        for p in procs:
            p.start()
        shared.wait()
        start = time.perf_counter()
        ends = [e for _ in procs for e in queue.get()]
        for p in procs:
            p.join()
    wall = max(t for t, _ in ends) - start
    done = sum(n for _, n in ends)
    check = "ok" if done == fx.chunks else f"FAIL: {done} of {fx.chunks} chunks"
    return (fx.chunks / wall if wall > 0 else 0.0), check


# --- CPU accounting -----------------------------------------------------------------------

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _backend_cpu(database: str) -> dict[int, float]:
    """CPU seconds of each PostgreSQL backend connected to ``database`` (Linux /proc)."""
    found: dict[int, float] = {}
    needle = f" {database} ".encode()
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
            if not cmd.startswith(b"postgres: ") or needle not in cmd:
                continue
            with open(f"/proc/{pid}/stat") as f:
                parts = f.read().rsplit(")", 1)[1].split()
            found[int(pid)] = (int(parts[11]) + int(parts[12])) / _TICK  # utime + stime
        except (OSError, IndexError, ValueError):
            continue
    return found


class ServerCpu:
    """Samples the CPU time of one database's backends while a run goes on.

    Backends that exit during the run (pool overflow connections are closed when returned)
    keep the value of their last sample, so the total is a slight underestimate.
    """

    interval = 0.1

    def __init__(self, database: str | None) -> None:
        self.database = database
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> None:
        if self.database and os.path.isdir("/proc"):
            self.first = _backend_cpu(self.database)
            self.last = dict(self.first)
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def _sample(self) -> None:
        assert self.database is not None
        for pid, cpu in _backend_cpu(self.database).items():
            self.last[pid] = cpu
            self.first.setdefault(pid, 0.0)

    def stop(self) -> tuple[float, int]:
        """CPU seconds used by the backends since :meth:`start`, and how many there were."""
        if not self._thread.is_alive():
            return 0.0, 0
        self._stop.set()
        self._thread.join()
        self._sample()
        used = {pid: cpu - self.first.get(pid, 0.0) for pid, cpu in self.last.items()}
        return sum(used.values()), sum(1 for v in used.values() if v > 0)


def machine_cpu_seconds() -> float:
    """Busy CPU seconds of the whole machine since boot (all cores)."""
    try:
        with open("/proc/stat") as f:
            fields = [int(x) for x in f.readline().split()[1:]]
    except OSError:
        return 0.0
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / _TICK


# --- statement timing ---------------------------------------------------------------------

_TABLE = re.compile(r"\b(?:FROM|UPDATE|INTO)\s+(\w+)", re.IGNORECASE)
_commit_t0 = threading.local()


def statement_label(sql: str) -> str:
    """A short name for a statement: verb, table and the clause that tells it apart."""
    s = " ".join(sql.split())
    upper = s.upper()
    if upper.startswith("WITH") and "UPDATE SIM_CHUNKS" in upper:
        return "UPDATE sim_chunks (lease: pick + update)"
    head = upper.split(" ", 1)[0]
    table = _TABLE.search(s)
    label = f"{head} {table.group(1) if table else ''}".strip()
    if "FOR UPDATE" in upper:
        label += " FOR UPDATE"
    elif head == "UPDATE" and "completed_iterations" in s:
        label += " (progress counter)"
    elif head == "UPDATE" and "expirations" in s:
        label += " (reaper)"
    elif head == "UPDATE" and "nodes" in label and "last_seen_at <" in s:
        label += " (mark offline)"
    elif head == "SELECT" and " JOIN " in upper:
        label += " (join)"
    return label


class StatementTimer:
    """Client-side time per kind of statement (and per commit), from SQLAlchemy events."""

    def __init__(self, engine: Engine) -> None:
        self.time: defaultdict[str, float] = defaultdict(float)
        self.calls: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.engine = engine
        event.listen(engine, "before_cursor_execute", self._before)
        event.listen(engine, "after_cursor_execute", self._after)
        event.listen(engine, "commit", self._before_commit)
        event.listen(Session, "after_commit", self._after_commit)

    def close(self) -> None:
        event.remove(self.engine, "before_cursor_execute", self._before)
        event.remove(self.engine, "after_cursor_execute", self._after)
        event.remove(self.engine, "commit", self._before_commit)
        event.remove(Session, "after_commit", self._after_commit)

    def _add(self, label: str, seconds: float) -> None:
        with self.lock:
            self.time[label] += seconds
            self.calls[label] += 1

    def _before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        conn.info.setdefault("bench_t0", []).append(time.perf_counter())

    def _after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        t0 = conn.info["bench_t0"].pop()
        self._add(statement_label(statement), time.perf_counter() - t0)

    def _before_commit(self, conn: Any) -> None:
        _commit_t0.t = time.perf_counter()

    def _after_commit(self, session: Any) -> None:
        t0 = getattr(_commit_t0, "t", None)
        if t0 is not None:
            self._add("COMMIT", time.perf_counter() - t0)
            _commit_t0.t = None


# --- one case -----------------------------------------------------------------------------


@dataclass
class CaseResult:
    """The figures of one (database, nodes, batch) run."""

    database: str
    nodes: int
    batch: int
    processes: int
    chunks: int = 0
    wall: float = 0.0
    ops: float = 0.0
    steady_ops: float = 0.0
    lease_ms: float = 0.0
    complete_ms: float = 0.0
    finalize_ms: float = 0.0
    #: PostgreSQL's own floor for the same case (plain SQL), ops/s.
    floor_ops: float = 0.0
    floor_check: str = ""
    client_cpu: float = 0.0
    server_cpu: float = 0.0
    backends: int = 0
    machine_cpu: float = 0.0
    check: str = ""
    #: Sample rate of verification (None: the submitter's own nodes only, no checks).
    verify_rate: float | None = None
    #: Chunks that were run a second time to check them.
    verified: int = 0
    statements: list[tuple[str, int, float]] = field(default_factory=list)
    profile: pstats.Stats | None = None


def rate_to(fraction: float, chunks: int, start: float, stats: list[NodeStats]) -> float:
    """ops/s until ``fraction`` of the chunks were completed (leaves out the tail: the call
    that merges the job's results, and nodes running out of work)."""
    done = 0
    for t, n in sorted(d for s in stats for d in s.done_at):
        done += n
        if done >= fraction * chunks:
            return done / (t - start) if t > start else 0.0
    return 0.0


def verify(engine: Engine, fx: Fixture, stats: list[NodeStats]) -> str:
    """Every chunk completed exactly once, leased once (twice when it was verified), and
    the job's counter is exact."""
    errors = Counter(s.error for s in stats if s.error)
    problems = [f"{n} nodes died: {e}" if n > 1 else e for e, n in errors.items()]
    accepted = Counter(cid for s in stats for cid in s.accepted)
    outcomes = sum((s.outcomes for s in stats), Counter())
    with Session(engine) as session:
        verified = set(
            session.exec(
                select(SimChunk.id).where(
                    SimChunk.job_id == fx.job_id, col(SimChunk.verified_by).isnot(None)
                )
            ).all()
        )
    if set(accepted) != set(fx.results):
        problems.append(f"{len(fx.results) - len(accepted)} chunks never accepted")
    if any(n != (2 if cid in verified else 1) for cid, n in accepted.items()):
        problems.append("a chunk was accepted twice")
    if set(outcomes) - {Outcome.ACCEPTED.value}:
        problems.append(f"outcomes {dict(outcomes)}")
    with Session(engine) as session:
        job = session.get(SimJob, fx.job_id)
        assert job is not None
        done = session.exec(
            select(func.count()).where(
                SimChunk.job_id == fx.job_id, SimChunk.status == ChunkStatus.COMPLETED.value
            )
        ).one()
        leased_twice = session.exec(
            select(func.count()).select_from(
                select(ChunkLease.chunk_id)
                .where(col(ChunkLease.chunk_id).not_in(verified or {0}))
                .group_by(col(ChunkLease.chunk_id))
                .having(func.count() > 1)
                .subquery()
            )
        ).one()
        if done != fx.chunks:
            problems.append(f"{done}/{fx.chunks} chunks completed in the database")
        if leased_twice and not errors:  # after a node died, its expired leases are reissued
            problems.append(f"{leased_twice} chunks leased twice")
        if job.completed_iterations != job.total_iterations:
            problems.append(
                f"completed_iterations {job.completed_iterations}/{job.total_iterations}"
            )
        if job.status != JobStatus.COMPLETED.value or not job.result:
            problems.append(f"job {job.status}")
        elif job.result.get("iterations") != fx.total_iterations:
            problems.append(f"report has {job.result.get('iterations')} iterations")
    return "ok" if not problems else "FAIL: " + "; ".join(problems)


def run_case(
    kind: str,
    *,
    nodes: int,
    batch: int,
    chunks: int,
    processes: int,
    statements: bool,
    profile: bool,
    directory: str,
    analyze: bool = False,
    verify_rate: float | None = None,
    floor: bool = False,
) -> CaseResult:
    """Set up a fresh database, run the nodes, check the outcome.

    ``verify_rate``: half the nodes are a friend's, whose results are sampled at this rate
    (besides each node's first); None: every node is the submitter's (nothing checked).
    """
    res = CaseResult(kind, nodes, batch, processes, verify_rate=verify_rate)
    _FinishProbe.ended.clear()
    with open_database(kind, directory) as engine:
        hooks = make_hooks()
        fx = set_up(
            engine, hooks, nodes=nodes, chunks=chunks, batch=batch, shared=verify_rate is not None
        )
        if analyze:  # fresh planner statistics, as autovacuum would eventually gather
            with engine.connect() as conn:
                conn.exec_driver_sql("ANALYZE")
                conn.commit()
        res.chunks = fx.chunks
        dbname = engine.url.database if is_postgres(engine) else None
        timer = StatementTimer(engine) if statements and processes == 1 else None
        server = ServerCpu(dbname)
        server.start()
        machine0 = machine_cpu_seconds()
        if processes == 1:
            coordinator = Coordinator(
                engine,
                hooks=hooks,
                settings=CoordinatorSettings(verify_rate=verify_rate or 0.0),
            )
            barrier = threading.Barrier(nodes + 1)
            cpu0 = time.process_time()
            box: list[list[NodeStats]] = []
            until_ended = verify_rate is not None
            runner = threading.Thread(
                target=lambda: box.append(
                    run_threads(
                        coordinator, fx.creds, batch, fx.results, barrier, profile, until_ended
                    )
                )
            )
            runner.start()
            barrier.wait()
            start = time.perf_counter()
            runner.join()
            stats = box[0]
            settle(coordinator)
            res.client_cpu = time.process_time() - cpu0
        else:
            ctx = multiprocessing.get_context("fork")
            barrier = ctx.Barrier(processes + 1 if nodes >= processes else nodes + 1)
            queue = ctx.Queue()
            url = engine.url.render_as_string(hide_password=False)
            groups = [fx.creds[i::processes] for i in range(processes)]
            groups = [g for g in groups if g]
            # One party per process: each process releases its own threads.
            procs = [
                ctx.Process(
                    target=_process_main,
                    args=(url, g, batch, fx.results, barrier, queue, profile),
                )
                for g in groups
            ]
            for p in procs:
                p.start()
            barrier.wait()
            start = time.perf_counter()
            gathered = [queue.get() for _ in procs]
            for p in procs:
                p.join()
            stats = [s for group_stats, _ in gathered for s in group_stats]
            res.client_cpu = sum(cpu for _, cpu in gathered)
            # perf_counter is CLOCK_MONOTONIC on Linux: comparable across processes.
        last_result = max(s.end for s in stats)
        end = wait_until_merged(engine, fx.job_id)
        res.finalize_ms = 1000 * max(end - last_result, 0.0)
        res.wall = end - start
        res.server_cpu, res.backends = server.stop()
        res.machine_cpu = machine_cpu_seconds() - machine0
        res.ops = fx.chunks / res.wall if res.wall > 0 else 0.0
        lease_calls = sum(s.lease_calls for s in stats)
        complete_calls = sum(s.complete_calls for s in stats)
        res.lease_ms = 1000 * sum(s.lease_s for s in stats) / max(lease_calls, 1)
        res.complete_ms = 1000 * sum(s.complete_s for s in stats) / max(complete_calls, 1)
        res.steady_ops = rate_to(0.9, fx.chunks, start, stats)
        res.check = verify(engine, fx, stats)
        with Session(engine) as session:
            res.verified = session.exec(
                select(func.count()).where(
                    SimChunk.job_id == fx.job_id, col(SimChunk.verified_by).isnot(None)
                )
            ).one()
        if timer is not None:
            timer.close()
            res.statements = sorted(
                ((label, timer.calls[label], t) for label, t in timer.time.items()),
                key=lambda r: -r[2],
            )
        if profile:
            merged: pstats.Stats | None = None
            for s in stats:
                if s.profile:
                    with tempfile.NamedTemporaryFile(suffix=".prof", delete=False) as f:
                        f.write(s.profile)
                    if merged is None:
                        merged = pstats.Stats(f.name, stream=io.StringIO())
                    else:
                        merged.add(f.name)
                    os.unlink(f.name)
            res.profile = merged
    if floor and kind == "postgres":
        with open_database(kind, directory) as engine:
            fx = set_up(engine, make_hooks(), nodes=nodes, chunks=chunks, batch=batch)
            url = engine.url.render_as_string(hide_password=False)
            res.floor_ops, res.floor_check = run_floor(url, fx, batch=batch, processes=processes)
    return res


def wait_until_merged(engine: Engine, job_id: int, timeout: float = 120.0) -> float:
    """When the job's report was written (the finisher merges after the last result)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        with Session(engine) as session:
            job = session.get(SimJob, job_id)
            if job is not None and job.status != JobStatus.RUNNING.value:
                return time.perf_counter()
        time.sleep(0.002)
    return time.perf_counter()


# --- output -------------------------------------------------------------------------------

#: Table columns: title and width (the first is left-aligned).
COLUMNS = [
    ("database", 9), ("nodes", 6), ("batch", 6), ("procs", 6), ("chunks", 7), ("verify", 12),
    ("wall s", 8), ("ops/s", 8), ("90% ops/s", 10), ("x base", 7), ("x b1", 6),
    ("lease ms", 9), ("compl ms", 9), ("final ms", 9), ("py ms/op", 9), ("pg ms/op", 9),
    ("pg conns", 9), ("box cpu", 8), ("floor/s", 8), ("% floor", 8), ("  check", 0),
]  # fmt: skip


def _line(cells: list[str]) -> str:
    out = []
    for i, ((_, width), cell) in enumerate(zip(COLUMNS, cells, strict=True)):
        out.append(cell.ljust(width) if i == 0 else cell.rjust(width))
    return "".join(out)


HEADER = _line([title for title, _ in COLUMNS])


def format_row(r: CaseResult, base: float | None, batch1: float | None) -> str:
    """One line of the table (CPU per op: this process / its PostgreSQL backends)."""
    per_op = 1000 / r.chunks if r.chunks else 0.0
    pg = r.database == "postgres"
    return _line(
        [
            r.database,
            str(r.nodes),
            str(r.batch),
            str(r.processes),
            str(r.chunks),
            f"{r.verify_rate:.0%} ({r.verified})" if r.verify_rate is not None else "-",
            f"{r.wall:.2f}",
            f"{r.ops:,.0f}",
            f"{r.steady_ops:,.0f}" if r.steady_ops else "-",
            f"{r.ops / base:.2f}" if base else "-",
            f"{r.ops / batch1:.1f}" if batch1 and r.batch != 1 else "-",
            f"{r.lease_ms:.2f}",
            f"{r.complete_ms:.2f}",
            f"{r.finalize_ms:.0f}",
            f"{r.client_cpu * per_op:.3f}",
            f"{r.server_cpu * per_op:.3f}" if pg else "-",
            str(r.backends) if pg else "-",
            f"{r.machine_cpu / r.wall:.2f}" if r.wall else "-",
            f"{r.floor_ops:,.0f}" if r.floor_ops else "-",
            f"{r.ops / r.floor_ops:.0%}" if r.floor_ops else "-",
            f"  {r.check}"
            + (f"; floor {r.floor_check}" if r.floor_check not in ("", "ok") else ""),
        ]
    )


def machine_line() -> str:
    """CPU model and core count of this machine."""
    model = platform.processor() or "unknown CPU"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "?"
    return (
        f"machine: {model}, {os.cpu_count()} cores, load average {load}; "
        f"Python {platform.python_version()}"
    )


def parse_list(text: str) -> list[int]:
    """``"1,8,64"`` -> ``[1, 8, 64]``."""
    return [int(x) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    """Run the matrix and print the table, then one final line of figures."""
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--chunks", type=int, default=10_000, help="chunks per job (default 10000)")
    p.add_argument("--nodes", default="1,8,64", help="simulated node counts (default 1,8,64)")
    p.add_argument("--batch", default="1,50", help="chunks per lease/complete call (default 1,50)")
    p.add_argument("--databases", default="sqlite,postgres", help="sqlite,postgres")
    p.add_argument(
        "--processes",
        type=int,
        default=1,
        help="spread the nodes over N processes (portal workers); default 1 (threads only)",
    )
    p.add_argument(
        "--baseline-chunks",
        type=int,
        default=1_000,
        help=f"chunks per run when batch < {BIG_BATCH} (default 1000: batch 1 runs at tens "
        "of ops/s on 2 cores; pass 10000 for the full figure)",
    )
    p.add_argument("--quick", action="store_true", help="smoke run: 500 chunks, nodes 1,8")
    p.add_argument(
        "--statements",
        action="store_true",
        help="print client-side time per kind of SQL statement (threads only)",
    )
    p.add_argument("--profile", action="store_true", help="print a cProfile of the node calls")
    p.add_argument(
        "--verify-rate",
        default="",
        help="e.g. 0,0.05: also run each case with half the nodes a friend's, whose results "
        "are checked on another node (each node's first, then this share); the column verify "
        "shows the rate and the chunks run twice. Threads only.",
    )
    p.add_argument(
        "--analyze",
        action="store_true",
        help="run ANALYZE after submitting the job (by default the planner has no statistics "
        "for the new chunks, as right after a submit)",
    )
    p.add_argument(
        "--no-floor",
        action="store_true",
        help="skip PostgreSQL's own floor (the same statements as plain SQL, same nodes, "
        "batch and chunks, on a fresh copy of the job) measured after each PostgreSQL row",
    )
    args = p.parse_args(argv)
    if args.quick:
        args.chunks, args.baseline_chunks, args.nodes = 500, 200, "1,8"
    rates: list[float | None] = [float(x) for x in args.verify_rate.split(",") if x.strip()]
    if rates and args.processes != 1:
        p.error("--verify-rate runs with threads only (--processes 1)")
    if not rates:
        rates = [None]
    nodes_list, batches = parse_list(args.nodes), parse_list(args.batch)
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    if unknown := set(kinds) - {"sqlite", "postgres"}:
        p.error(f"unknown database {', '.join(sorted(unknown))}")

    print(machine_line())
    where = f"in {args.processes} processes" if args.processes > 1 else "in one process"
    print(
        f"op = one chunk leased and completed through Coordinator.lease/complete; {args.chunks:,} "
        f"chunks of {ITERATIONS_PER_CHUNK} iterations per run ({args.baseline_chunks:,} when "
        f"batch < {BIG_BATCH}); nodes are threads {where}"
    )
    print(
        "90% ops/s: rate until 90% of the chunks were done (without the final merge); "
        "x base: ops/s / first row's; x b1: / batch 1 with the same database and nodes; "
        "py/pg ms/op: CPU per op of the nodes' process(es) / their PostgreSQL backends; "
        "box cpu: cores busy on the machine (other work included)"
    )
    if args.analyze:
        print("ANALYZE runs after each job is submitted")
    print(HEADER, flush=True)
    results: list[CaseResult] = []
    missing: list[str] = []
    with tempfile.TemporaryDirectory(prefix="wowlab-bench-") as directory:
        for kind in kinds:
            try:
                for batch in batches:
                    for nodes, rate in ((n, r) for n in nodes_list for r in rates):
                        r = run_case(
                            kind,
                            nodes=nodes,
                            batch=batch,
                            chunks=args.chunks if batch >= BIG_BATCH else args.baseline_chunks,
                            processes=args.processes,
                            statements=args.statements,
                            profile=args.profile,
                            directory=directory,
                            analyze=args.analyze,
                            verify_rate=rate,
                            floor=not args.no_floor,
                        )
                        results.append(r)
                        print(format_row(r, results[0].ops, batch1_ops(results, r)), flush=True)
                        if r.statements:
                            print_statements(r)
                        if r.profile:
                            print_profile(r)
            except DatabaseMissing as exc:
                missing.append(f"{kind}: {exc}")
                print(f"MISSING: {exc}", flush=True)
    print(final_line(results, missing))
    failed = any(r.check != "ok" for r in results)
    return 1 if failed or missing else 0


def batch1_ops(results: list[CaseResult], r: CaseResult) -> float | None:
    """ops/s of the batch-1 row with the same database and node count, if any."""
    same = [
        x
        for x in results
        if (x.database, x.nodes, x.batch, x.verify_rate) == (r.database, r.nodes, 1, r.verify_rate)
    ]
    return same[0].ops if same else None


def print_statements(r: CaseResult) -> None:
    """Time per kind of statement, per op and as a share of the nodes' call time."""
    busy = sum(t for _, _, t in r.statements)
    print(f"    {'statement':<44}{'calls':>8}{'ms/call':>9}{'us/op':>8}{'share':>7}")
    for label, calls, t in r.statements:
        print(
            f"    {label:<44}{calls:>8}{1000 * t / calls:>9.3f}{1e6 * t / r.chunks:>8.0f}"
            f"{100 * t / busy:>6.0f}%"
        )
    print(f"    {'all statements + commits':<44}{'':>8}{'':>9}{1e6 * busy / r.chunks:>8.0f}")


def print_profile(r: CaseResult) -> None:
    """The functions with the most own time, summed over the node threads."""
    assert r.profile is not None
    out = io.StringIO()
    r.profile.stream = out  # type: ignore[attr-defined]
    r.profile.sort_stats(os.environ.get("WOWLAB_BENCH_SORT", "tottime")).print_stats(
        int(os.environ.get("WOWLAB_BENCH_LINES", "25"))
    )
    print("\n".join("    " + line for line in out.getvalue().splitlines() if line.strip()))


def final_line(results: list[CaseResult], missing: list[str]) -> str:
    """One line of figures: per database the best unbatched and best batched rate and their
    ratio, the best rate against the first row, the goal, the checks."""
    parts = []
    base = results[0] if results else None
    for kind in ("sqlite", "postgres"):
        rows = [r for r in results if r.database == kind]
        if not rows:
            continue
        best = max(rows, key=lambda r: r.ops)
        text = f"{kind} best {best.ops:,.0f} ops/s (batch {best.batch}, {best.nodes} nodes"
        text += f", {best.processes} procs)" if best.processes > 1 else ")"
        ones = [r for r in rows if r.batch == 1]
        if ones and best.batch != 1:
            best1 = max(ones, key=lambda r: r.ops)
            text += f" = {best.ops / best1.ops:.1f}x its best batch 1 ({best1.ops:,.0f} ops/s)"
        if base is not None and base.ops and best is not base:
            text += f", {best.ops / base.ops:.1f}x base"
        parts.append(text)
    if base is not None:
        parts.append(f"base = {base.database}, {base.nodes} nodes, batch {base.batch}")
    pg = [r.ops for r in results if r.database == "postgres"]
    if pg:
        reached = "reached" if max(pg) >= GOAL_OPS else "NOT reached"
        parts.append(f"goal {GOAL_OPS:,} ops/s on PostgreSQL {reached} ({max(pg) / GOAL_OPS:.0%})")
    ok = results and all(r.check == "ok" for r in results)
    parts.append("all checks ok" if ok else "CHECK FAILED")
    if missing:
        parts.append("MISSING " + "; ".join(missing))
    return "RESULT: " + "; ".join(parts)


if __name__ == "__main__":
    sys.exit(main())
