"""Rates the dashboard shows: sims per second from the iterations done, and CPU use."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import psutil

from wowlab_gui_qt.settings import cpu_count


@dataclass
class SpeedMeter:
    """Sims per second over the last few seconds, from the iterations done so far."""

    window_seconds: float = 5.0
    samples: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=64))

    def add(self, at: float, iterations_done: int) -> None:
        """A reading: at monotonic time ``at``, ``iterations_done`` in all."""
        if self.samples and iterations_done < self.samples[-1][1]:
            self.samples.clear()  # a new agent (unlink, change of server)
        self.samples.append((at, iterations_done))
        while self.samples and at - self.samples[0][0] > self.window_seconds:
            self.samples.popleft()

    @property
    def rate(self) -> float:
        """Iterations per second over the window."""
        if len(self.samples) < 2:
            return 0.0
        (t0, i0), (t1, i1) = self.samples[0], self.samples[-1]
        return (i1 - i0) / (t1 - t0) if t1 > t0 else 0.0


class CpuMeter:
    """CPU use since the last reading, in percent of the whole machine: of this process
    (the node and its engine threads) and of everything."""

    def __init__(self) -> None:
        self.process = psutil.Process()
        self.process.cpu_percent()  # the first reading only starts the count
        psutil.cpu_percent()

    def read(self) -> tuple[float, float]:
        """``(node, machine)`` percent."""
        return self.process.cpu_percent() / cpu_count(), psutil.cpu_percent()


__all__ = ["CpuMeter", "SpeedMeter"]
