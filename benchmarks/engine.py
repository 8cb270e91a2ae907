"""Benchmark of the combat engine: speed per example, compile and start times, memory.

For every example config, run as a 300 s fight (+-20 %) on one core:

* iterations and events per CPU-second of the compiled (numba) engine, in this process,
  one thread (CPU time, so that other load on the machine does not count; the wall-clock
  rate is shown too);
* the same for the ``NUMBA_DISABLE_JIT=1`` path, in a subprocess, and the speed-up;
* cold compile time (a subprocess with an empty numba cache, to its first result) and warm
  start time (a fresh process with the cache filled, to its first result);
* peak memory: the state arrays of each example, and the peak RSS of the processes;
* what a stoppable chunk costs: one fire_mage chunk of about 5 s run as one call and run
  with a stop flag and a progress callback (sub-batches of ~0.1 s, checked between them),
  alternated over several rounds, events per CPU-second of each (``--interrupt-only`` runs
  just this).

* with ``--baseline REV``: the same examples on the engine of git revision ``REV`` (its
  ``wowlab_engine`` exported to a temporary directory, compiled there), measured in
  alternating subprocesses with the current tree, to show what a change costs per event.

Usage: ``python benchmarks/engine.py [--seconds 3] [--pure-iterations 3] [--rounds 6]
[--baseline REV] [--interrupt-only]``.
The last line sums it up in one line of figures.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

FIGHT_SECONDS = 300.0

_FIRST_RESULT = """
import json, sys, time
t0 = time.perf_counter()
from wowlab_engine.engine import NumbaEngine
engine = NumbaEngine()
config = json.loads(open(sys.argv[1]).read())
prepared = engine.prepare(config)
engine.run_chunk(prepared, seed=1, seed_offset=0, iterations=1)
print(json.dumps({"seconds": time.perf_counter() - t0}))
"""

_PURE = """
import json, sys, time, resource
from wowlab_engine.engine import NumbaEngine
engine = NumbaEngine()
out = {}
for path in sys.argv[2:]:
    prepared = engine.prepare(json.loads(open(path).read()))
    engine.run_chunk(prepared, seed=1, seed_offset=0, iterations=1)  # warm up
    t0 = time.thread_time()
    result = engine.run_chunk(prepared, seed=1, seed_offset=0, iterations=int(sys.argv[1]))
    seconds = time.thread_time() - t0
    out[path] = {"seconds": seconds, "iterations": result.count,
                 "events": result.metrics["events"]}
out["max_rss_kib"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps(out))
"""


_EVENTS_PER_CPU_SECOND = """
import json, sys, time
from wowlab_engine.engine import NumbaEngine
engine = NumbaEngine()
seconds = float(sys.argv[1])
out = {}
for path in sys.argv[2:]:
    prepared = engine.prepare(json.loads(open(path).read()))
    engine.run_chunk(prepared, seed=1, seed_offset=0, iterations=2)
    events, cpu, offset, batch = 0, 0.0, 0, 50
    while cpu < seconds:
        c0 = time.thread_time()
        result = engine.run_chunk(prepared, seed=1, seed_offset=offset, iterations=batch)
        cpu += time.thread_time() - c0
        events += result.metrics["events"]
        offset += batch
        batch = min(batch * 2, 2000)
    out[path] = events / cpu
print(json.dumps(out))
"""


def compare_with_baseline(
    revision: str, configs: dict[str, Path], seconds: float, workdir: Path, rounds: int = 3
) -> dict[str, tuple[float, float]]:
    """Best events per CPU-second of each example: (revision's engine, current tree).

    Rounds alternate between the two so that changing load on the machine hits both alike.
    """
    root = Path(__file__).resolve().parent.parent
    base_dir = workdir / "baseline"
    base_dir.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(root), "archive", revision, "wowlab_engine"],
        capture_output=True,
        check=True,
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(base_dir)], input=archive, check=True)
    paths = [str(p) for p in configs.values()]
    trees = {"baseline": {"PYTHONPATH": str(base_dir)}, "current": {"PYTHONPATH": str(root)}}
    best: dict[str, dict[str, float]] = {tree: {} for tree in trees}
    run_python(_EVENTS_PER_CPU_SECOND, "0.1", *paths, env=trees["baseline"])  # compile
    for _ in range(rounds):
        for tree, env in trees.items():
            rates, _ = run_python(_EVENTS_PER_CPU_SECOND, str(seconds), *paths, env=env)
            for path, rate in rates.items():
                best[tree][path] = max(best[tree].get(path, 0.0), rate)
    return {
        name: (best["baseline"][str(path)], best["current"][str(path)])
        for name, path in configs.items()
    }


def fight_of_300s(config: dict[str, Any]) -> dict[str, Any]:
    """The example as a 300 s fight with the usual 20 % variation."""
    fight = {**config.get("fight", {}), "max_time": FIGHT_SECONDS, "vary_combat_length": 0.2}
    return {**config, "fight": fight}


def run_python(code: str, *args: str, env: dict[str, str] | None = None) -> tuple[Any, float]:
    """Run ``code`` in a fresh interpreter; return its JSON output and the wall time."""
    t0 = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-c", code, *args],
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(proc.stdout.strip().splitlines()[-1]), time.perf_counter() - t0


def measure_compiled(config_path: Path, seconds: float) -> dict[str, float]:
    """Iterations/s and events/s in this process, one thread, for about ``seconds``."""
    from wowlab_engine.engine import NumbaEngine
    from wowlab_engine.sim import model

    engine = NumbaEngine()
    prepared = engine.prepare(json.loads(config_path.read_text()))
    engine.run_chunk(prepared, seed=1, seed_offset=0, iterations=2)  # compiled, warm caches
    iterations, events, elapsed, cpu, offset = 0, 0, 0.0, 0.0, 0
    batch = 50
    while elapsed < seconds:
        t0, c0 = time.perf_counter(), time.thread_time()
        result = engine.run_chunk(prepared, seed=1, seed_offset=offset, iterations=batch)
        elapsed += time.perf_counter() - t0
        cpu += time.thread_time() - c0
        iterations += result.count
        events += result.metrics["events"]
        offset += batch
        batch = min(batch * 2, 2000)
    state = model.new_state(prepared.model)
    state_bytes = sum(a.nbytes for a in (*prepared.model, *state))
    return {
        "iterations_per_s": iterations / cpu,
        "events_per_s": events / cpu,
        "wall_events_per_s": events / elapsed,
        "events_per_iteration": events / iterations,
        "state_kib": state_bytes / 1024,
    }


def measure_interruptible(config_path: Path, rounds: int) -> dict[str, float]:
    """Events per CPU-second of the same ~5 s chunk without and with stop/progress checks,
    alternated ``rounds`` times (so that load on the machine hits both alike)."""
    import threading

    from wowlab_engine.engine import NumbaEngine

    engine = NumbaEngine()
    prepared = engine.prepare(json.loads(config_path.read_text()))
    probe = engine.run_chunk(prepared, seed=1, seed_offset=0, iterations=2000)  # and warm
    t0 = time.thread_time()
    engine.run_chunk(prepared, seed=1, seed_offset=0, iterations=2000)
    iterations = max(1, int(2000 * 5.0 / max(time.thread_time() - t0, 1e-6)))
    plain_cpu = checked_cpu = 0.0
    plain_events = checked_events = 0
    batches: list[int] = []
    for r in range(rounds):
        for checked in (r % 2 == 0, r % 2 == 1):  # ABBA: neither always goes first
            stop = threading.Event()
            calls: list[int] = []
            c0 = time.thread_time()
            if checked:
                result = engine.run_chunk(
                    prepared,
                    seed=r,
                    seed_offset=0,
                    iterations=iterations,
                    stop=stop,
                    progress=calls.append,
                )
                checked_cpu += time.thread_time() - c0
                checked_events += result.metrics["events"]
                batches.append(len(calls))
            else:
                result = engine.run_chunk(prepared, seed=r, seed_offset=0, iterations=iterations)
                plain_cpu += time.thread_time() - c0
                plain_events += result.metrics["events"]
    del probe
    assert plain_events == checked_events  # the same seeds: the same work
    plain = plain_events / plain_cpu
    checked_rate = checked_events / checked_cpu
    return {
        "iterations": iterations,
        "plain_events_per_s": plain,
        "checked_events_per_s": checked_rate,
        "cost_pct": (plain / checked_rate - 1) * 100,
        "batches": sum(batches) / len(batches),
        "batch_seconds": checked_cpu / rounds / (sum(batches) / len(batches)),
    }


def print_interruptible(configs: dict[str, Path], rounds: int) -> str:
    """Measure and print the stop/progress overhead on fire_mage; return its summary."""
    figures = measure_interruptible(configs["fire_mage"], rounds)
    print(
        f"stoppable chunk, fire_mage, {figures['iterations']:,} iterations (~5 s), {rounds} rounds "
        f"alternated; load average {os.getloadavg()[0]:.1f}:"
    )
    print(f"  one call:                      {figures['plain_events_per_s']:>12,.0f} events/CPU-s")
    print(
        f"  stop flag + progress, batched: {figures['checked_events_per_s']:>12,.0f} events/CPU-s"
        f" ({figures['batches']:.0f} sub-batches of ~{figures['batch_seconds']:.2f} s)"
    )
    summary = f"stop/progress checks cost {figures['cost_pct']:+.2f} % of events/CPU-s"
    print(f"  {summary}")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=3.0, help="timed run per example")
    parser.add_argument("--pure-iterations", type=int, default=5, help="iterations, pure path")
    parser.add_argument(
        "--baseline", default=None, help="git revision to compare events per CPU-second with"
    )
    parser.add_argument("--rounds", type=int, default=6, help="rounds of the stop-flag test")
    parser.add_argument(
        "--interrupt-only", action="store_true", help="only the stop/progress overhead"
    )
    args = parser.parse_args()

    from wowlab_engine import __version__
    from wowlab_engine.example_configs import example_paths

    workdir = Path(tempfile.mkdtemp(prefix="wowlab-bench-"))
    configs: dict[str, Path] = {}
    for name, path in example_paths().items():
        configs[name] = workdir / f"{name}.json"
        configs[name].write_text(json.dumps(fight_of_300s(json.loads(path.read_text()))))
    first = str(next(iter(configs.values())))
    if args.interrupt_only:
        print_interruptible(configs, args.rounds)
        return

    # Cold compile: an empty numba cache; warm start: a fresh process with that cache filled.
    cache = {"NUMBA_CACHE_DIR": str(workdir / "numba-cache")}
    _, cold = run_python(_FIRST_RESULT, first, env=cache)
    warm_runs = [run_python(_FIRST_RESULT, first, env=cache)[1] for _ in range(3)]
    warm = min(warm_runs)

    pure, _ = run_python(
        _PURE,
        str(args.pure_iterations),
        *map(str, configs.values()),
        env={"NUMBA_DISABLE_JIT": "1"},
    )

    rows = []
    for name, path in configs.items():
        compiled = measure_compiled(path, args.seconds)
        p = pure[str(path)]
        pure_events_per_s = p["events"] / p["seconds"]
        rows.append(
            {
                "example": name,
                **compiled,
                "pure_events_per_s": pure_events_per_s,
                "speedup": compiled["events_per_s"] / pure_events_per_s,
            }
        )
    peak_rss_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    pure_rss_mib = pure["max_rss_kib"] / 1024

    print(
        f"wowlab_engine {__version__}, numba, one thread, {FIGHT_SECONDS:.0f} s fights +-20 %, "
        f"rates per CPU-second; load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores"
    )
    header = (
        f"{'example':<12} {'iter/s':>9} {'events/s':>12} {'wall ev/s':>12} {'events/iter':>11} "
        f"{'pure ev/s':>10} {'speed-up':>9} {'state KiB':>9}"
    )
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r['example']:<12} {r['iterations_per_s']:>9,.0f} {r['events_per_s']:>12,.0f} "
            f"{r['wall_events_per_s']:>12,.0f} "
            f"{r['events_per_iteration']:>11,.0f} {r['pure_events_per_s']:>10,.0f} "
            f"{r['speedup']:>8,.0f}x {r['state_kib']:>9,.1f}"
        )
    total_events = sum(r["events_per_s"] for r in rows) / len(rows)
    slowest = min(r["events_per_s"] for r in rows)
    speedup = min(r["speedup"] for r in rows)
    print()
    print(f"cold compile (empty cache, to first result): {cold:.1f} s")
    print(f"warm start (fresh process, cache filled, to first result): {warm:.2f} s")
    print(f"peak RSS: {peak_rss_mib:.0f} MiB compiled, {pure_rss_mib:.0f} MiB pure Python")
    if args.baseline:
        compared = compare_with_baseline(args.baseline, configs, args.seconds, workdir)
        print()
        print(f"per event against {args.baseline} (best of 3 alternating subprocess runs):")
        print(f"{'example':<12} {'baseline ev/s':>14} {'current ev/s':>13} {'change':>8}")
        for name, (base, current) in compared.items():
            print(f"{name:<12} {base:>14,.0f} {current:>13,.0f} {current / base - 1:>+8.1%}")
        worst = min(current / base - 1 for base, current in compared.values())
        print(f"slowest change per event against {args.baseline}: {worst:+.1%}")
    interrupt = print_interruptible(configs, args.rounds)
    print(
        f"engine: mean {total_events / 1e6:.2f} M events/CPU-s (slowest {slowest / 1e6:.2f} M), "
        f"cold compile {cold:.1f} s, warm start {warm:.2f} s, peak RSS {peak_rss_mib:.0f} MiB, "
        f"speed-up over NUMBA_DISABLE_JIT >= {speedup:.0f}x, {interrupt}"
    )


if __name__ == "__main__":
    main()
