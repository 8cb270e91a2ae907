"""The portal under node load: N simulated HTTP nodes loop lease -> complete against one
portal, on SQLite and on PostgreSQL; operations per second and p50/p99 latency of ``lease``
and of ``complete``.

The portal (``create_app`` under uvicorn, one coordinator) runs in a process of its own, as
in production, so the nodes and the server do not share a GIL; the helpers come from
``benchmarks/transport.py`` (which compares MQTT with HTTP: this script looks at the portal
and its database only). The simulated nodes are asyncio tasks in this process, each with its
own :class:`~wowlab_core.http_client.HttpTransport` (its own connection). Each run gets a
fresh database, N nodes registered and claimed up front, and one toy job of ``--chunks``
chunks (at least 4 per node); every node loops ``lease(1)`` -> ``complete`` (the toy engine's
result for the chunk: microseconds) until a lease comes back empty. One op is one HTTP call
(lease or complete). The run checks that every chunk was accepted once and that the job
completed with all its iterations.

Usage::

    python benchmarks/portal.py                        # SQLite and PostgreSQL, 1/8/64 nodes
    python benchmarks/portal.py --databases sqlite --nodes 1,8 --chunks 300
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parent))

from transport import (
    TOY,
    _portal_process,
    claimed_nodes,
    database,
    free_port,
    make_hooks,
    percentile,
    server_process,
    submit,
)

from wowlab_core.db import read_session
from wowlab_core.http_client import HttpOptions, HttpTransport
from wowlab_core.models import JobStatus, SimJob
from wowlab_core.protocol import Completion, Heartbeat, NodeCredentials
from wowlab_core.testing.toy_engine import ToyEngine


@dataclass
class Row:
    database: str
    nodes: int
    chunks: int
    seconds: float
    lease: list[float]
    complete: list[float]
    check: str

    @property
    def ops(self) -> float:
        return (len(self.lease) + len(self.complete)) / self.seconds

    def ms(self, which: str, q: float) -> float:
        return 1000 * percentile(getattr(self, which), q)


async def drive(url: str, creds: list[NodeCredentials]) -> tuple[float, list, list, int]:
    """Every node loops lease(1) -> complete until the job is done; (seconds, lease
    latencies, complete latencies, chunks accepted)."""
    anyio.to_thread.current_default_thread_limiter().total_tokens = len(creds) + 40
    engine = ToyEngine()
    prepared = engine.prepare(TOY)
    transports = [HttpTransport(url, options=HttpOptions(timeout=120.0)) for _ in creds]
    leases: list[float] = []
    completes: list[float] = []
    accepted = 0

    async def node(t: HttpTransport, c: NodeCredentials) -> None:
        nonlocal accepted
        while True:
            started = time.perf_counter()
            got = await t.lease(c, 1)
            leases.append(time.perf_counter() - started)
            if not got:
                return
            [lease] = got
            result = engine.run_chunk(
                prepared, seed=lease.seed, seed_offset=lease.seed_offset, iterations=10
            ).to_dict()
            started = time.perf_counter()
            outcomes = await t.complete(c, [Completion(lease.chunk_id, lease.lease_token, result)])
            completes.append(time.perf_counter() - started)
            accepted += sum(o.outcome == "accepted" for o in outcomes)

    try:
        async with anyio.create_task_group() as tg:  # connect everyone first
            for t, c in zip(transports, creds, strict=True):
                tg.start_soon(t.heartbeat, c, Heartbeat())
        started = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for t, c in zip(transports, creds, strict=True):
                tg.start_soon(node, t, c)
        took = time.perf_counter() - started
    finally:
        for t in transports:
            await t.aclose()
    return took, leases, completes, accepted


def measure(kind: str, nodes: int, chunks: int, directory: str) -> Row:
    hooks = make_hooks()
    with database(kind, directory) as (db, db_url):
        port = free_port()
        with server_process(_portal_process, db_url, port):
            creds = claimed_nodes(db, nodes)
            chunks = max(chunks, 4 * nodes)
            job_id = submit(db, hooks, chunks)
            took, leases, completes, accepted = anyio.run(drive, f"http://127.0.0.1:{port}", creds)
        with read_session(db) as s:
            job = s.get(SimJob, job_id)
            assert job is not None
            status, done = job.status, job.completed_iterations
    ok = status == JobStatus.COMPLETED.value and done == chunks * 10 and accepted == chunks
    check = "ok" if ok else f"FAILED ({status}, {done} iterations, {accepted} accepted)"
    return Row(kind, nodes, chunks, took, leases, completes, check)


HEADER = (
    f"{'database':<10}{'nodes':>6}{'chunks':>7}{'wall s':>8}{'ops/s':>8}{'x base':>7}"
    f"{'lease p50':>10}{'lease p99':>10}{'compl p50':>10}{'compl p99':>10}  check"
)


def format_row(r: Row, base: float) -> str:
    return (
        f"{r.database:<10}{r.nodes:>6}{r.chunks:>7}{r.seconds:>8.2f}{r.ops:>8.0f}"
        f"{r.ops / base:>7.2f}{r.ms('lease', 0.5):>8.1f}ms{r.ms('lease', 0.99):>8.1f}ms"
        f"{r.ms('complete', 0.5):>8.1f}ms{r.ms('complete', 0.99):>8.1f}ms  {r.check}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--databases", default="sqlite,postgres")
    p.add_argument("--nodes", default="1,8,64")
    p.add_argument("--chunks", type=int, default=600, help="chunks per run (>= 4 per node)")
    args = p.parse_args(argv)
    kinds = [k.strip() for k in args.databases.split(",") if k.strip()]
    counts = [int(n) for n in args.nodes.split(",")]
    print(
        f"{platform.node()}: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, Python "
        f"{platform.python_version()}; base = {kinds[0]}, {counts[0]} node(s)"
    )
    print(HEADER, flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="wowlab-bench-") as tmp:
        for kind in kinds:
            for n in counts:
                directory = Path(tmp) / f"{kind}-{n}"
                directory.mkdir()
                rows.append(measure(kind, n, args.chunks, str(directory)))
                print(format_row(rows[-1], rows[0].ops), flush=True)
    base = rows[0].ops
    parts = []
    for kind in kinds:
        mine = [r for r in rows if r.database == kind]
        best = max(mine, key=lambda r: r.ops)
        most = max(mine, key=lambda r: r.nodes)
        parts.append(
            f"{kind} best {best.ops:.0f} ops/s ({best.nodes} nodes, {best.ops / base:.2f}x base), "
            f"{most.nodes} nodes: lease p99 {most.ms('lease', 0.99):.0f} ms, "
            f"complete p99 {most.ms('complete', 0.99):.0f} ms"
        )
    failed = [r for r in rows if r.check != "ok"]
    print(
        "RESULT: " + "; ".join(parts) + f"; base = {rows[0].database}, {rows[0].nodes} node(s)"
        f" ({base:.0f} ops/s)" + (f"; {len(failed)} CHECK FAILED" if failed else "; all checks ok")
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
