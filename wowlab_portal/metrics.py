"""Prometheus metrics in the text exposition format, written by hand (no extra dependency).

Gauges come from the database at scrape time (nodes, jobs and chunks by status, leases
handed out); the lease latency histogram is measured by the node ``lease`` route.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Mapped
from sqlmodel import Session, SQLModel, col, select

from wowlab_core.models import (
    ChunkLease,
    ChunkStatus,
    JobStatus,
    Node,
    NodeStatus,
    SimChunk,
    SimJob,
)

#: Seconds; a lease is one short transaction, so most land in the first buckets.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class Histogram:
    """A thread-safe cumulative histogram (Prometheus semantics)."""

    def __init__(self, buckets: Sequence[float] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(sorted(buckets))
        self._counts = [0] * (len(self.buckets) + 1)
        self._sum = 0.0
        self._lock = threading.Lock()

    def observe(self, value: float) -> None:
        """Record one observation."""
        with self._lock:
            self._counts[bisect.bisect_left(self.buckets, value)] += 1
            self._sum += value

    def lines(self, name: str) -> list[str]:
        """Its ``_bucket``, ``_sum`` and ``_count`` samples."""
        with self._lock:
            counts, total = list(self._counts), self._sum
        out, running = [], 0
        for bound, count in zip(self.buckets, counts, strict=False):
            running += count
            out.append(f'{name}_bucket{{le="{bound}"}} {running}')
        running += counts[-1]
        out += [
            f'{name}_bucket{{le="+Inf"}} {running}',
            f"{name}_sum {total}",
            f"{name}_count {running}",
        ]
        return out


def _by_status(
    session: Session, model: type[SQLModel], column: Mapped[str], values: Iterable[str]
) -> dict[str, int]:
    counts = {v: 0 for v in values}
    for status, n in session.execute(
        sa.select(column, sa.func.count()).select_from(model).group_by(column)
    ):
        counts[status] = n
    return counts


def _family(name: str, kind: str, help_text: str, samples: list[str]) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}", *samples]


def exposition(session: Session, *, lease_latency: Histogram) -> str:
    """The whole scrape, as Prometheus text (version 0.0.4)."""
    nodes = _by_status(session, Node, col(Node.status), (s.value for s in NodeStatus))
    jobs = _by_status(session, SimJob, col(SimJob.status), (s.value for s in JobStatus))
    chunks = _by_status(session, SimChunk, col(SimChunk.status), (s.value for s in ChunkStatus))
    leases = session.exec(select(sa.func.count()).select_from(ChunkLease)).one()
    lines = [
        *_family(
            "wowlab_nodes",
            "gauge",
            "Nodes by status.",
            [f'wowlab_nodes{{status="{k}"}} {v}' for k, v in sorted(nodes.items())],
        ),
        *_family(
            "wowlab_jobs",
            "gauge",
            "Jobs by status.",
            [f'wowlab_jobs{{status="{k}"}} {v}' for k, v in sorted(jobs.items())],
        ),
        *_family(
            "wowlab_chunks",
            "gauge",
            "Chunks by status (leased now, completed, failed, ...).",
            [f'wowlab_chunks{{status="{k}"}} {v}' for k, v in sorted(chunks.items())],
        ),
        *_family(
            "wowlab_chunk_leases_total",
            "counter",
            "Chunk leases handed out (retries included).",
            [f"wowlab_chunk_leases_total {leases}"],
        ),
        *_family(
            "wowlab_lease_request_seconds",
            "histogram",
            "Time this portal took to answer nodes' lease requests.",
            lease_latency.lines("wowlab_lease_request_seconds"),
        ),
    ]
    return "\n".join(lines) + "\n"


__all__ = ["LATENCY_BUCKETS", "Histogram", "exposition"]
