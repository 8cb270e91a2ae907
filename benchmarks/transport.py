"""Node transports under load: request/response latency and lease+complete throughput, over
MQTT (a real Mosquitto and the wowlab bridge), over HTTP (the portal) and over Supabase (the
node functions in SQL, behind the PostgREST-like test gateway), with 1, 100 and 1,000
simulated nodes.

The server side (the bridge, or the portal under uvicorn) runs in a process of its own with
one coordinator, as in production. The simulated nodes are tasks in worker processes of at
most 250 nodes each (paho's network loop uses select(), which cannot watch descriptors above
1023, so one process holds about 300 MQTT connections); each node has its own transport
object and so its own connection (one paho client, or one httpx client). Nodes are
registered and claimed in the database up front. For each transport and node count:

- ``idle p50/p99``: one node sends heartbeats back to back while the others stay connected
  and quiet: the round trip of one request through the whole stack (a database write
  included).
- ``load p50/p99``: every node sends a heartbeat every ``--period`` seconds (default 5 s;
  real nodes send one every 15 s) at a random phase, for two periods: the latency a node
  sees when the whole pool is alive.
- ``chunks/s``: a toy job of ``--chunks`` chunks (at least two per node); every node loops
  lease(1) -> complete until the job is done; chunks per second from submit to the job's
  completion. Each chunk is two requests. The run checks that every chunk was counted once.
- ``lc p50/p99``: the time of one lease(1) + complete pair in that loop (the toy run between
  them excluded).

The Supabase server side is the test gateway (wowlab_transport_supabase.testing.gateway) on
a Supabase-like PostgreSQL database: it does per request what PostgREST does (verify the
JWT, switch role, set the claims, call the function) but is not PostgREST, and there is no
Kong in front of it; the figures measure the SQL and one HTTP hop, not a hosted project.

Usage::

    python benchmarks/transport.py                       # MQTT and HTTP, 1/100/1000 nodes
    python benchmarks/transport.py --quick               # 1 and 100 nodes, fewer chunks
    python benchmarks/transport.py --transports mqtt --nodes 1000 --database sqlite
    python benchmarks/transport.py --transports http,mqtt,supabase --quick

For a profiler: ``WOWLAB_BENCH_BRIDGE_PIDS=file`` gets the bridges' process ids,
``WOWLAB_BENCH_PHASE_FILE=file`` each phase's name as it begins, and with both that and
``WOWLAB_BENCH_THREAD_CPU=file`` bridge 1 writes how long it held each request (from its
arrival to its answer; p50 and p99) and its CPU per request by thread over the
load phase (the event loop, paho's thread, the database batches' worker threads).
"""

from __future__ import annotations

import argparse
import contextlib
import multiprocessing
import os
import platform
import random
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import sqlalchemy as sa
from sqlmodel import select

from wowlab_core.coordinator import Coordinator, CoordinatorSettings
from wowlab_core.db import create_db_engine, read_session, write_session
from wowlab_core.jobs import submit_job
from wowlab_core.models import JobStatus, SimJob, User
from wowlab_core.nodes import claim_node, register_node
from wowlab_core.plugins import Hooks, build_registry
from wowlab_core.protocol import Completion, Heartbeat, NodeCredentials, NodeInfo
from wowlab_core.testing.toy_engine import ToyEngine, toy_engine_plugin

GOAL_P99_MS = 50.0
TOY = {"base_dps": 1000, "spread": 300}
SETTINGS = CoordinatorSettings(lease_seconds=600.0, heartbeat_seconds=15.0)


def make_hooks() -> Hooks:
    registry = build_registry(load_entry_points=False)
    registry.pm.register(toy_engine_plugin, name="toy-engine")
    return Hooks(registry.pm)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wait_for_port(port: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on port {port}")


# --- CPU per role ----------------------------------------------------------------------------

#: Processes by role (broker, bridges, nodes); PostgreSQL's backends are found by database.
CPU_ROLES: dict[str, list[int]] = {}
TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICKS  # utime + stime


def cpu_by_role(database: str | None) -> dict[str, float]:
    """CPU seconds used so far by each role's processes (and by the PostgreSQL backends
    serving ``database``: their process title names it)."""
    out = {role: sum(_cpu_seconds(p) for p in pids) for role, pids in CPU_ROLES.items()}
    if database:
        total = 0.0
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    title = (entry / "cmdline").read_bytes().replace(b"\0", b" ")
                except OSError:
                    continue
                if title.startswith(b"postgres: ") and database.encode() in title:
                    total += _cpu_seconds(int(entry.name))
        out["postgres"] = total
    return out


# --- the server side, each in its own process ---------------------------------------------


@contextlib.contextmanager
def mosquitto(
    directory: Path, nodes: list[NodeCredentials] | None = None
) -> Iterator[tuple[str, str]]:
    """A Mosquitto on a free port with the shipped settings (``wowlab mqtt setup-broker``:
    accounts, no anonymous logins, TCP_NODELAY). Yields the URL and the bridge's password
    file. The accounts of ``nodes`` (registered in the database up front) are written into
    the accounts file before the broker starts, as if they had enrolled long ago: a
    thousand nodes enrolling at once costs the broker minutes (see mqtt_accounts.py), which
    is not what this benchmark measures."""
    from wowlab_transport_mqtt.broker_setup import BrokerFiles, find_plugin, setup_broker

    binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
    port = free_port()
    files = BrokerFiles(
        conf=directory / "conf.d" / "wowlab.conf",
        dynsec=directory / "dynamic-security.json",
        bridge_password_file=directory / "bridge.password",
        port=port,
        bind_address="127.0.0.1",
        plugin=find_plugin() or "mosquitto_dynamic_security.so",
    )
    setup_broker(files, owner=None)
    if nodes:
        add_node_accounts(files.dynsec, nodes)
    conf = directory / "mosquitto.conf"
    lines = ["log_dest none", f"include_dir {files.conf.parent}"]
    if os.geteuid() == 0:
        lines.append("user root")
    conf.write_text("\n".join(lines) + "\n")
    proc = subprocess.Popen([binary, "-c", str(conf)], stderr=subprocess.DEVNULL)
    CPU_ROLES["broker"] = [proc.pid]
    try:
        wait_for_port(port)
        yield f"mqtt://127.0.0.1:{port}", str(files.bridge_password_file)
    finally:
        proc.terminate()
        proc.wait(10)


def add_node_accounts(dynsec: Path, nodes: list[NodeCredentials]) -> None:
    """Write the broker accounts of ``nodes`` into the dynamic-security file, in the form
    the bridge's ``createClient``/``createRole`` commands leave them."""
    import json

    from wowlab_transport_mqtt import accounts
    from wowlab_transport_mqtt.broker_setup import _password_entry

    state = json.loads(dynsec.read_text())
    for c in nodes:
        role = accounts.node_role(c.node_id)
        state["roles"].append({"rolename": role, "acls": accounts.node_acls(c.node_id)})
        state["clients"].append(
            {
                "username": accounts.node_username(c.node_id),
                "clientid": accounts.node_client_id(c.node_id, c.token),
                **_password_entry(accounts.node_password(c.token)),
                "roles": [{"rolename": role, "priority": 0}],
            }
        )
    dynsec.write_text(json.dumps(state))


def _bridge_process(
    db_url: str,
    broker_url: str,
    password_file: str,
    instance: str,
    stats: Any,
    ready: Any,
    stop: Any,
) -> None:
    from wowlab_core.wakeups import Wakeups
    from wowlab_transport_mqtt.bridge import MqttBridge

    if os.environ.get("WOWLAB_BENCH_BRIDGE_PIDS"):  # for a profiler (py-spy -p)
        with open(os.environ["WOWLAB_BENCH_BRIDGE_PIDS"], "a") as f:
            f.write(f"{os.getpid()}\n")
    coordinator = Coordinator(create_db_engine(db_url), hooks=make_hooks(), settings=SETTINGS)
    wakeups = Wakeups(coordinator.db)
    coordinator.share_wakeups(wakeups)
    bridge = MqttBridge(
        coordinator,
        broker_url,
        password_file=password_file,
        connect_timeout=20.0,
        instance=instance,
    )
    if os.environ.get("WOWLAB_BENCH_THREAD_CPU") and instance == "1":
        counts = bridge.stats
        handled: list[tuple[float, float]] = []
        answer = bridge._answer

        async def timed(parsed: Any, message: Any) -> None:
            # From the request's arrival (paho stamps it as it reads the packet) to its
            # answer handed to paho: the bridge's part of a node's round trip.
            await answer(parsed, message)
            handled.append((message.timestamp, time.monotonic() - message.timestamp))

        bridge._answer = timed  # type: ignore[method-assign]
        report = threading.Thread(
            target=_thread_cpu_report, args=(lambda: counts.requests, handled), daemon=True
        )
        report.start()

    async def main() -> None:
        async with anyio.create_task_group() as tg:
            await tg.start(bridge.run)
            ready.set()
            await anyio.to_thread.run_sync(stop.wait)
            tg.cancel_scope.cancel()

    with wakeups:
        anyio.run(main)
    stats.put(
        {
            "requests": bridge.stats.requests,
            "beats": bridge.heartbeats.items,
            "beat_batches": bridge.heartbeats.batches,
            "completes": bridge.completions.items,
            "complete_batches": bridge.completions.batches,
        }
    )


def _thread_cpu() -> dict[int, float]:
    """CPU seconds of each thread of this process, by native thread id."""
    found: dict[int, float] = {}
    for tid in os.listdir("/proc/self/task"):
        with contextlib.suppress(OSError):
            stat = Path(f"/proc/self/task/{tid}/stat").read_text()
            fields = stat[stat.rindex(")") + 2 :].split()
            found[int(tid)] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return found


def _thread_cpu_report(requests: Callable[[], int], handled: list[tuple[float, float]]) -> None:
    """Bridge 1's CPU by thread over the load phase (it learns the phase from
    $WOWLAB_BENCH_PHASE_FILE), written to $WOWLAB_BENCH_THREAD_CPU: which thread a
    request's CPU goes to (the event loop, paho's, the database batches' workers), and
    how long the bridge held the phase's requests (``handled``: arrival, seconds)."""
    phases = Path(os.environ["WOWLAB_BENCH_PHASE_FILE"])

    def wait_for(phase: str) -> None:
        while not phases.exists() or phase not in phases.read_text().split():
            time.sleep(0.05)

    wait_for("load")
    before, first, started = _thread_cpu(), requests(), time.monotonic()
    wait_for("work")
    after, count, ended = _thread_cpu(), requests() - first, time.monotonic()
    held = [seconds for arrived, seconds in list(handled) if started <= arrived < ended]
    names = {t.native_id: t.name for t in threading.enumerate()}
    used = sorted(((after[t] - before.get(t, 0.0), t) for t in after), reverse=True)
    lines = [
        f"bridge 1: {count} requests in the load phase, each held in the bridge "
        f"p50 {1000 * percentile(held, 0.5):.1f} ms, p99 {1000 * percentile(held, 0.99):.1f} ms"
        " (arrival to answer); CPU ms per request by thread"
    ]
    lines += [
        f"  {1000 * cpu / max(count, 1):6.2f}  {names.get(t, str(t))}" for cpu, t in used if cpu
    ]
    Path(os.environ["WOWLAB_BENCH_THREAD_CPU"]).write_text("\n".join(lines) + "\n")


def _gateway_process(db_url: str, port: int, ready: Any, stop: Any) -> None:
    from wowlab_transport_supabase.testing.gateway import RpcGateway

    gateway = RpcGateway(db_url, port=port, pool_size=16).start()
    ready.set()
    stop.wait()
    gateway.close()


def _portal_process(db_url: str, port: int, ready: Any, stop: Any) -> None:
    import threading

    import uvicorn

    from wowlab_portal.app import create_app

    coordinator = Coordinator(create_db_engine(db_url), hooks=make_hooks(), settings=SETTINGS)
    config = uvicorn.Config(
        create_app(coordinator=coordinator),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        timeout_keep_alive=60,
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)

    def watch() -> None:
        while not server.started:
            time.sleep(0.05)
        ready.set()
        stop.wait()
        server.should_exit = True

    threading.Thread(target=watch, daemon=True).start()
    server.run()


@contextlib.contextmanager
def server_process(target: Callable[..., None], *args: Any) -> Iterator[int]:
    """Run ``target`` in a process of its own; yields its pid."""
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    proc = ctx.Process(target=target, args=(*args, ready, stop), daemon=True)
    proc.start()
    try:
        if not ready.wait(60):
            raise RuntimeError(f"the server process ({target.__name__}) did not start")
        yield proc.pid or 0
    finally:
        stop.set()
        proc.join(15)
        if proc.is_alive():
            proc.kill()


# --- the simulated nodes ------------------------------------------------------------------


def claimed_nodes(db: Any, count: int) -> list[NodeCredentials]:
    with write_session(db) as s:
        owner = User(username="bench")
        s.add(owner)
        s.flush()
        creds = []
        for i in range(count):
            new = register_node(s, info=NodeInfo(name=f"bench-{i}", max_parallel=1))
            s.flush()
            claim_node(s, user=owner, code=new.node.claim_code or "")
            creds.append(NodeCredentials(node_id=new.node.id or 0, token=new.token))
        s.commit()
    return creds


def submit(db: Any, hooks: Hooks, chunks: int) -> int:
    with write_session(db) as s:
        owner = s.exec(select(User)).first()
        assert owner is not None
        job = submit_job(
            s,
            user=owner,
            config=TOY,
            iterations=chunks * 10,
            engine_name="toy",
            seed=3,
            hooks=hooks,
            chunks=chunks,
        )
        s.commit()
        return job.id or 0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] if ordered else float("nan")


def make_transport(kind: str, url: str) -> Any:
    if kind == "mqtt":
        from wowlab_transport_mqtt.client import MqttTransport

        return MqttTransport(url, timeout=120.0, result_timeout=300.0)
    if kind == "supabase":
        from wowlab_transport_supabase.client import SupabaseTransport
        from wowlab_transport_supabase.testing.jwt import anon_key

        return SupabaseTransport(url, anon_key(), realtime=False, timeout=120.0)
    from wowlab_core.http_client import HttpOptions, HttpTransport

    return HttpTransport(url, options=HttpOptions(timeout=120.0))


def _nodes_process(
    kind: str,
    url: str,
    creds: list[NodeCredentials],
    first: bool,
    args: dict[str, Any],
    barrier: Any,
    results: Any,
) -> None:
    """A share of the simulated nodes; the phases are kept in step by ``barrier``."""
    anyio.run(_nodes, kind, url, creds, first, args, barrier, results)


async def _nodes(
    kind: str,
    url: str,
    creds: list[NodeCredentials],
    first: bool,
    args: dict[str, Any],
    barrier: Any,
    results: Any,
) -> None:
    anyio.to_thread.current_default_thread_limiter().total_tokens = len(creds) + 40
    transports = [make_transport(kind, url) for _ in creds]
    pairs = list(zip(transports, creds, strict=True))
    idle: list[float] = []
    loaded: list[float] = []
    pairs_timed: list[float] = []
    accepted = 0

    async def step() -> None:
        await anyio.to_thread.run_sync(barrier.wait)

    try:
        async with anyio.create_task_group() as tg:  # connect everyone
            for t, c in pairs:
                tg.start_soon(t.heartbeat, c, Heartbeat())
        await step()
        if first:
            for _ in range(args["idle_requests"]):
                started = time.perf_counter()
                await transports[0].heartbeat(creds[0], Heartbeat())
                idle.append(time.perf_counter() - started)
        await step()

        period = args["period"]

        async def beat(t: Any, c: NodeCredentials) -> None:
            await anyio.sleep(random.uniform(0, period))
            for _ in range(2):
                started = time.perf_counter()
                await t.heartbeat(c, Heartbeat())
                loaded.append(time.perf_counter() - started)
                await anyio.sleep(period)

        async with anyio.create_task_group() as tg:
            for t, c in pairs:
                tg.start_soon(beat, t, c)
        await step()  # the main process submits the job now
        await step()
        engine = ToyEngine()
        prepared = engine.prepare(TOY)

        async def work(t: Any, c: NodeCredentials) -> None:
            nonlocal accepted
            while True:
                started = time.perf_counter()
                leases = await t.lease(c, 1)
                leased = time.perf_counter() - started
                if not leases:
                    break
                [lease] = leases
                result = engine.run_chunk(
                    prepared, seed=lease.seed, seed_offset=lease.seed_offset, iterations=10
                ).to_dict()
                started = time.perf_counter()
                outcomes = await t.complete(
                    c, [Completion(lease.chunk_id, lease.lease_token, result)]
                )
                pairs_timed.append(leased + time.perf_counter() - started)
                accepted += sum(o.outcome == "accepted" for o in outcomes)

        async with anyio.create_task_group() as tg:
            for t, c in pairs:
                tg.start_soon(work, t, c)
        await step()
    finally:
        results.put({"idle": idle, "loaded": loaded, "pairs": pairs_timed, "accepted": accepted})
        with anyio.CancelScope(shield=True):
            async with anyio.create_task_group() as tg:
                for t in transports:
                    tg.start_soon(t.aclose)


@dataclass
class Row:
    transport: str
    bridges: int
    nodes: int
    processes: int
    idle_p50: float
    idle_p99: float
    load_p50: float
    load_p99: float
    load_rate: float
    chunks: int
    chunks_per_second: float
    lc_p50: float
    lc_p99: float
    check: str


def _note_phase(name: str) -> None:
    """Write the phase that begins to $WOWLAB_BENCH_PHASE_FILE (for a profiler's timing)."""
    if os.environ.get("WOWLAB_BENCH_PHASE_FILE"):
        with open(os.environ["WOWLAB_BENCH_PHASE_FILE"], "a") as f:
            f.write(f"{name}\n")


def run_nodes(
    kind: str,
    url: str,
    db: Any,
    hooks: Hooks,
    nodes: int,
    args: Any,
    creds: list[NodeCredentials] | None = None,
) -> Row:
    """Spread ``nodes`` simulated nodes over processes of at most ``--nodes-per-process``
    (paho's network loop uses select(), which cannot watch descriptors above 1023: one
    process holds about 300 MQTT connections), and step them through the phases."""
    creds = creds or claimed_nodes(db, nodes)
    per = args.nodes_per_process
    shares = [creds[i : i + per] for i in range(0, nodes, per)]
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(len(shares) + 1)
    results = ctx.Queue()
    options = {"idle_requests": args.idle_requests, "period": args.period}
    procs = [
        ctx.Process(
            target=_nodes_process,
            args=(kind, url, share, i == 0, options, barrier, results),
            daemon=True,
        )
        for i, share in enumerate(shares)
    ]
    for proc in procs:
        proc.start()
    CPU_ROLES["nodes"] = [p.pid or 0 for p in procs]
    database = getattr(db.url, "database", None) if kind == "mqtt" else None
    timeout = 600
    barrier.wait(timeout)  # connected
    barrier.wait(timeout)  # idle round trips done
    load_started = time.perf_counter()
    _note_phase("load")
    cpu_before = cpu_by_role(database)
    barrier.wait(timeout)  # load done
    load_seconds = time.perf_counter() - load_started
    cpu_after = cpu_by_role(database)
    _note_phase("work")
    chunks = max(args.chunks, 2 * nodes)
    job_id = submit(db, hooks, chunks)
    barrier.wait(timeout)
    started = time.perf_counter()
    barrier.wait(timeout)  # the job's chunks are all done
    took = time.perf_counter() - started
    parts = [results.get(timeout=60) for _ in procs]
    deadline = time.monotonic() + 10  # a finisher may merge the job a moment later
    while time.monotonic() < deadline:
        with read_session(db) as s:
            merged = s.get(SimJob, job_id)
            if merged is not None and merged.status == JobStatus.COMPLETED.value:
                break
        time.sleep(0.05)
    for proc in procs:
        proc.join(30)
    idle = [x for p in parts for x in p["idle"]]
    loaded = [x for p in parts for x in p["loaded"]]
    timed_pairs = [x for p in parts for x in p["pairs"]]
    # CPU ms per request of the load phase, by role.
    cpu = {
        role: 1000 * (cpu_after[role] - cpu_before.get(role, 0.0)) / max(1, len(loaded))
        for role in cpu_after
    }
    accepted = sum(p["accepted"] for p in parts)
    with read_session(db) as s:
        job = s.get(SimJob, job_id)
        assert job is not None
        status, completed = job.status, job.completed_iterations
    ok = status == JobStatus.COMPLETED.value and completed == chunks * 10 and accepted == chunks
    cpu_text = ", ".join(f"{role} {ms:.2f}" for role, ms in sorted(cpu.items()))
    return Row(
        kind,
        0,
        nodes,
        len(procs),
        1000 * percentile(idle, 0.5),
        1000 * percentile(idle, 0.99),
        1000 * percentile(loaded, 0.5),
        1000 * percentile(loaded, 0.99),
        len(loaded) / load_seconds,
        chunks,
        chunks / took,
        1000 * percentile(timed_pairs, 0.5),
        1000 * percentile(timed_pairs, 0.99),
        ("ok" if ok else f"FAILED ({status}, {completed} iterations, {accepted} accepted)")
        + (f"; CPU ms per request under load: {cpu_text}" if kind == "mqtt" else ""),
    )


@contextlib.contextmanager
def database(kind: str, directory: str) -> Iterator[tuple[Any, str]]:
    from wowlab_core.testing.databases import fresh_postgres_database, fresh_sqlite_database

    cm = fresh_postgres_database() if kind == "postgres" else fresh_sqlite_database(directory)
    with cm as engine:
        yield engine, engine.url.render_as_string(hide_password=False)


def measure(kind: str, nodes: int, args: Any, directory: Path, bridges: int = 1) -> Row:
    hooks = make_hooks()
    if kind == "supabase":
        import threading

        from wowlab_transport_supabase.finisher import Finisher
        from wowlab_transport_supabase.testing.harness import supabase_database, write_settings

        with supabase_database() as db:
            write_settings(db, SETTINGS)
            with db.begin() as conn:  # every simulated node registers from this address
                conn.execute(
                    sa.text(
                        "update wowlab.settings set register_limit_per_minute = 1000000, "
                        "register_limit_total_per_minute = 1000000"
                    )
                )
            db_url = db.url.render_as_string(hide_password=False)
            port = free_port()
            stop = threading.Event()
            # The finisher (`wowlab supabase worker`) merges the job once the SQL counted it.
            finisher = threading.Thread(
                target=Finisher(db, hooks=hooks).run, args=(stop,), daemon=True
            )
            finisher.start()
            try:
                with server_process(_gateway_process, db_url, port):
                    return run_nodes(kind, f"http://127.0.0.1:{port}", db, hooks, nodes, args)
            finally:
                stop.set()
                finisher.join(10)
    with database(args.database, str(directory)) as (db, db_url):
        if kind == "mqtt":
            stats = multiprocessing.get_context("spawn").Queue()
            creds = claimed_nodes(db, nodes)
            with contextlib.ExitStack() as stack:
                broker_url, password_file = stack.enter_context(mosquitto(directory, creds))
                CPU_ROLES["bridges"] = [
                    stack.enter_context(
                        server_process(
                            _bridge_process, db_url, broker_url, password_file, str(i + 1), stats
                        )
                    )
                    for i in range(bridges)
                ]
                row = run_nodes(kind, broker_url, db, hooks, nodes, args, creds)
            row.bridges = bridges
            parts = [stats.get(timeout=30) for _ in range(bridges)]
            beats = sum(p["beats"] for p in parts)
            beat_batches = max(1, sum(p["beat_batches"] for p in parts))
            completes = sum(p["completes"] for p in parts)
            complete_batches = max(1, sum(p["complete_batches"] for p in parts))
            shares = "/".join(str(p["requests"]) for p in parts)
            row.check += (
                f" (requests per bridge {shares}; per transaction: "
                f"{beats / beat_batches:.1f} heartbeats, {completes / complete_batches:.1f} "
                "results)"
            )
            return row
        port = free_port()
        with server_process(_portal_process, db_url, port):
            return run_nodes(kind, f"http://127.0.0.1:{port}", db, hooks, nodes, args)


HEADER = (
    f"{'transport':<10}{'brdg':>5}{'nodes':>6}{'procs':>6}{'idle p50':>10}{'idle p99':>10}"
    f"{'load p50':>10}{'load p99':>10}{'load/s':>8}{'chunks':>8}{'chunks/s':>10}{'lc p50':>10}"
    f"{'lc p99':>10}  check"
)


def format_row(r: Row) -> str:
    return (
        f"{r.transport:<10}{r.bridges or '-':>5}{r.nodes:>6}{r.processes:>6}"
        f"{r.idle_p50:>8.1f}ms{r.idle_p99:>8.1f}ms"
        f"{r.load_p50:>8.1f}ms{r.load_p99:>8.1f}ms{r.load_rate:>8.1f}{r.chunks:>8}"
        f"{r.chunks_per_second:>10.0f}{r.lc_p50:>8.1f}ms{r.lc_p99:>8.1f}ms  {r.check}"
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--transports", default="mqtt,http,supabase")
    p.add_argument("--nodes", default="1,100,1000")
    p.add_argument("--database", choices=("postgres", "sqlite"), default="postgres")
    p.add_argument("--period", type=float, default=5.0, help="seconds between heartbeats")
    p.add_argument("--chunks", type=int, default=500, help="chunks of the job (>= 2 per node)")
    p.add_argument("--idle-requests", type=int, default=300)
    p.add_argument("--nodes-per-process", type=int, default=250)
    p.add_argument(
        "--bridges",
        default="1",
        help="MQTT bridges sharing the requests, one run per count (e.g. 1,2,3)",
    )
    p.add_argument("--quick", action="store_true", help="1 and 100 nodes, 200 chunks")
    args = p.parse_args(argv)
    if args.quick:
        args.nodes, args.chunks, args.idle_requests, args.period = "1,100", 200, 100, 2.0
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    counts = [int(n) for n in args.nodes.split(",")]
    load = os.getloadavg()[0]
    print(
        f"{platform.node()}: {os.cpu_count()} cores, load {load:.2f} (1-min average), Python "
        f"{platform.python_version()}, database {args.database}, heartbeat period {args.period:g} s"
    )
    print(HEADER, flush=True)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="wowlab-bench-") as tmp:
        for name in transports:
            for n in counts:
                bridge_counts = [int(b) for b in args.bridges.split(",")] if name == "mqtt" else [1]
                for i, k in enumerate(bridge_counts):  # a count may repeat (e.g. 2,1,2)
                    directory = Path(tmp) / f"{name}-{n}-{k}-{i}"
                    directory.mkdir()
                    row = measure(name, n, args, directory, bridges=k)
                    rows.append(row)
                    print(format_row(row), flush=True)
    failed = [r for r in rows if not r.check.startswith("ok")]
    parts = []
    for name in transports:
        mine = [r for r in rows if r.transport == name]
        biggest = max(mine, key=lambda r: (r.nodes, -r.load_p99))
        parts.append(
            f"{name}: idle p50 {mine[0].idle_p50:.1f} ms, load p99 {biggest.load_p99:.0f} ms "
            f"with {biggest.nodes} nodes (goal < {GOAL_P99_MS:.0f}), "
            f"{max(r.chunks_per_second for r in mine):.0f} chunks/s, "
            f"lease+complete p50 {mine[0].lc_p50:.1f} ms"
        )
    print("transport: " + "; ".join(parts) + (f"; {len(failed)} FAILED" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
