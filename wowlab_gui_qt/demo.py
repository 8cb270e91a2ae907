"""A realistic state for offscreen views (``wowlab gui --screenshot``): a node of a guild's
pool halfway through two chunks, a minute of history, a claim code, some log lines."""

from __future__ import annotations

import logging
import math
import time
from datetime import UTC, datetime, timedelta

from wowlab_core.agent import ChunkProgress
from wowlab_core.node_settings import NodeSettings
from wowlab_core.protocol import ClaimStatus
from wowlab_gui_qt.runner import NodeSnapshot
from wowlab_gui_qt.settings import GuiSettings


def demo_settings() -> NodeSettings:
    """A registered node of a portal (nothing is saved)."""
    settings = NodeSettings(
        name="raid-pc",
        max_parallel=3,
        transport="http",
        url="https://wowlab.example.org",
        node_id=42,
        token="demo",
    )
    gui = GuiSettings(cpu_limit_percent=75, chunks_total=1284, chunks_today=37)
    gui.today = datetime.now().date().isoformat()
    gui.store(settings)
    return settings


def demo_claim() -> ClaimStatus:
    """A fresh claim code, valid for 9 minutes 41 seconds more."""
    return ClaimStatus(
        claimed=False,
        claim_code="K7PM4Q",
        claim_expires_at=datetime.now(UTC) + timedelta(minutes=9, seconds=41.5),
    )


def demo_waiting() -> NodeSnapshot:
    """A registered node showing its claim code."""
    return NodeSnapshot(state="waiting-for-claim", node_id=42, claim_code="K7PM4Q", cores=4)


def demo_snapshot() -> NodeSnapshot:
    """A node running two chunks of two jobs."""
    return NodeSnapshot(
        state="working",
        node_id=42,
        owner="ana",
        sharing="friends, 1 guild",
        busy_workers=2,
        max_workers=3,
        cores=4,
        chunks=(
            ChunkProgress(913, 208, "numba", "fire_mage", 2000, 1380),
            ChunkProgress(917, 211, "numba", "affliction", 1500, 420),
        ),
        chunks_completed=37,
        iterations_done=5_000_000,
    )


def demo_history() -> tuple[list[float], list[tuple[float, float]]]:
    """60 s of sims/s and of CPU (node, machine): smooth, slightly uneven."""
    speed = [860 + 90 * math.sin(i / 6) + 40 * math.sin(i / 2.3) for i in range(60)]
    cpu = [
        (48 + 6 * math.sin(i / 5), 63 + 9 * math.sin(i / 4) + 4 * math.cos(i / 1.7))
        for i in range(60)
    ]
    return speed, cpu


def demo_logs() -> list[logging.LogRecord]:
    """A few minutes of a node's log."""
    now = time.time() - 180
    lines = [
        (
            logging.INFO,
            "wowlab_gui_qt.window",
            "node 'raid-pc' via http https://wowlab.example.org",
        ),
        (logging.INFO, "wowlab_gui_qt.runner", "warming up the numba engine (compiles once)"),
        (logging.INFO, "wowlab_gui_qt.runner", "numba engine ready in 11.8 s"),
        (logging.INFO, "wowlab_gui_qt.window", "claimed by ana"),
        (logging.INFO, "wowlab_core.agent", "handed back 0 lease(s) this node no longer runs"),
        (logging.INFO, "wowlab_gui_qt.runner", "pausing: Wow.exe running"),
        (logging.INFO, "wowlab_gui_qt.runner", "resuming work"),
        (
            logging.WARNING,
            "wowlab_core.agent",
            "lease failed: cannot reach the portal at "
            "https://wowlab.example.org: connection refused",
        ),
        (logging.INFO, "wowlab_core.agent", "chunk 905: 2000 iterations in 2.31 s (accepted)"),
        (logging.INFO, "wowlab_core.agent", "chunk 909: 1500 iterations in 1.77 s (accepted)"),
    ]
    records = []
    for i, (level, name, message) in enumerate(lines):
        record = logging.LogRecord(name, level, __file__, 0, message, None, None)
        record.created = now + i * 17.0
        records.append(record)
    return records


__all__ = [
    "demo_claim",
    "demo_history",
    "demo_logs",
    "demo_settings",
    "demo_snapshot",
    "demo_waiting",
]
