"""State that several processes share through the database: rate limits, wake-ups and
request keys. Each "process" is its own database engine (its own connections) and, for
wake-ups, its own coordinator, on the same database."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine
from sqlmodel import col, select

from wowlab_core import nodes as node_ops
from wowlab_core.access import grant_access
from wowlab_core.coordinator import Coordinator
from wowlab_core.db import create_db_engine, read_session, write_session
from wowlab_core.errors import AuthenticationFailed, InvalidRequest, RateLimited
from wowlab_core.models import (
    AccessType,
    ChunkLease,
    Node,
    NodeStatus,
    RequestKey,
    SimChunk,
    utcnow,
)
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import Completion, Heartbeat, RunningChunk
from wowlab_core.rate_limits import DatabaseRateLimiter
from wowlab_core.request_keys import Keyed, RequestRepeated, request_key
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_core.testing.toy_engine import ToyEngine
from wowlab_core.wakeups import CLAIMED, Wakeups

from .helpers import TOY, make_job, make_node, make_user


def second_engine(db: Engine) -> Engine:
    """Another process's view of ``db``: its own engine and connections."""
    return create_db_engine(db.url.render_as_string(hide_password=False))


@pytest.fixture
def other(db: Engine) -> Iterator[Engine]:
    engine = second_engine(db)
    yield engine
    engine.dispose()


@contextmanager
def selects(db: Engine) -> Iterator[list[str]]:
    """The SELECT statements sent to ``db`` inside the block, in order."""
    reads: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if statement.lstrip().upper().startswith("SELECT"):
            reads.append(statement)

    sa.event.listen(db, "before_cursor_execute", record)
    try:
        yield reads
    finally:
        sa.event.remove(db, "before_cursor_execute", record)


def keyed(name: str) -> Keyed:
    return Keyed(
        request_key("test", name),
        ok=lambda result: repr(result).encode(),
        error=lambda exc: f"error {type(exc).__name__}".encode(),
    )


# --- rate limits -----------------------------------------------------------------------


def test_a_database_rate_limit_holds_across_processes(db: Engine, other: Engine) -> None:
    # A 2 s window: a loaded CI machine took over 0.6 s for the first three hits once.
    one = DatabaseRateLimiter(db, name="claim", limit=3, window_seconds=2.0)
    two = DatabaseRateLimiter(other, name="claim", limit=3, window_seconds=2.0)
    started = time.monotonic()
    one.hit("user:1")
    two.hit("user:1")
    one.hit("user:1")
    with pytest.raises(RateLimited, match=r"try again in [12] s"):
        two.hit("user:1")
    assert time.monotonic() - started < 2.0  # else the window had slid: the check proves nothing
    two.hit("user:2")  # another key has its own count
    DatabaseRateLimiter(db, name="login", limit=1, window_seconds=60).hit("user:1")  # another limit
    time.sleep(max(0.0, started + 2.1 - time.monotonic()))  # the window slides past them
    two.hit("user:1")


@pytest.mark.postgres
def test_concurrent_attempts_in_two_processes_pass_exactly_the_limit(
    postgres_db: Engine,
) -> None:
    """Without the per-key lock both processes would read limit - 1 and both pass."""
    engines = [postgres_db, second_engine(postgres_db)]
    limiters = [DatabaseRateLimiter(e, name="burst", limit=10, window_seconds=60) for e in engines]
    passed = 0
    lock = threading.Lock()

    def attempt(i: int) -> None:
        nonlocal passed
        try:
            limiters[i % 2].hit("address:10.0.0.1")
        except RateLimited:
            return
        with lock:
            passed += 1

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(attempt, range(40)))
    engines[1].dispose()
    assert passed == 10


# --- wake-ups --------------------------------------------------------------------------


@pytest.mark.postgres
def test_work_signalled_in_one_process_wakes_the_waiters_of_another(
    postgres_db: Engine, wowlab_hooks: Hooks
) -> None:
    engine = second_engine(postgres_db)
    here = Coordinator(postgres_db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    there = Coordinator(engine, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    claimed: list[str] = []
    with Wakeups(postgres_db) as mine, Wakeups(engine) as theirs:
        unshare = here.share_wakeups(mine)
        there.share_wakeups(theirs)
        theirs.subscribe(CLAIMED, claimed.append)
        seen = there.work.generation
        started = time.monotonic()
        here.notify_work()
        assert there.wait_for_work(seen, timeout=5.0) != seen
        assert time.monotonic() - started < 2.0
        mine.publish(CLAIMED, "42")
        deadline = time.monotonic() + 5
        while not claimed and time.monotonic() < deadline:
            time.sleep(0.01)
        assert claimed == ["42"]
        # A process does not hear itself (it woke its own waiters directly).
        time.sleep(0.3)
        assert mine.received == 0 and theirs.received == 2
        # Unshared (the app's lifespan ended): this coordinator's work stays here.
        unshare()
        assert here.wakeups is None
        seen = there.work.generation
        here.notify_work()
        assert there.wait_for_work(seen, timeout=0.5) == seen
    engine.dispose()


def test_wakeups_on_sqlite_do_nothing(sqlite_db: Engine, wowlab_hooks: Hooks) -> None:
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    with Wakeups(sqlite_db) as wakeups:
        assert not wakeups.enabled
        coordinator.share_wakeups(wakeups)
        seen = coordinator.work.generation
        coordinator.notify_work()  # still wakes this process's waiters
        assert coordinator.wait_for_work(seen, timeout=0.1) != seen


# --- request keys ----------------------------------------------------------------------


def test_a_repeated_lease_request_is_carried_out_once(
    db: Engine, other: Engine, wowlab_hooks: Hooks
) -> None:
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner, max_parallel=4)
    make_job(db, owner, wowlab_hooks, iterations=80, chunks=8)
    first = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    second = Coordinator(other, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    request = keyed("lease-1")
    leases = first.lease(creds, 2, keyed=request)
    assert len(leases) == 2
    with pytest.raises(RequestRepeated) as repeated:
        second.lease(creds, 2, keyed=request)  # resent to another bridge
    assert repeated.value.reply == repr(leases).encode()
    with read_session(db) as s:
        assert len(s.exec(select(ChunkLease)).all()) == 2
    assert len(first.lease(creds, 2, keyed=keyed("lease-2"))) == 2  # a new request is new


@pytest.mark.postgres
def test_two_copies_of_a_request_at_once_take_effect_once(
    postgres_db: Engine, wowlab_hooks: Hooks
) -> None:
    engines = [postgres_db, *(second_engine(postgres_db) for _ in range(3))]
    owner = make_user(postgres_db, "owner")
    _, creds = make_node(postgres_db, owner, max_parallel=4)
    make_job(postgres_db, owner, wowlab_hooks, iterations=80, chunks=8)
    coordinators = [Coordinator(e, hooks=wowlab_hooks, settings=TEST_SETTINGS) for e in engines]
    request = keyed("same")

    def lease(c: Coordinator) -> bytes | None:
        try:
            return repr(c.lease(creds, 1, keyed=request)).encode()
        except RequestRepeated as repeated:
            return repeated.reply

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lease, coordinators))
    for e in engines[1:]:
        e.dispose()
    with read_session(postgres_db) as s:
        assert len(s.exec(select(ChunkLease)).all()) == 1
        assert len(s.exec(select(RequestKey)).all()) == 1
    assert len({a for a in answers if a is not None}) == 1  # everyone got the one answer


def test_a_repeated_failure_counts_one_attempt(db: Engine, wowlab_hooks: Hooks) -> None:
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner)
    make_job(db, owner, wowlab_hooks, iterations=10, chunks=1)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    [lease] = coordinator.lease(creds, 1)
    request = keyed("fail")
    coordinator.fail(creds, lease.chunk_id, lease.lease_token, "boom", keyed=request)
    with pytest.raises(RequestRepeated):
        coordinator.fail(creds, lease.chunk_id, lease.lease_token, "boom", keyed=request)
    with read_session(db) as s:
        chunk = s.get(SimChunk, lease.chunk_id)
        assert chunk is not None and chunk.failures == 1


def test_batches_answer_each_request_and_count_each_chunk_once(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    owner = make_user(db, "owner")
    nodes = [make_node(db, owner, name=f"n{i}", max_parallel=2)[1] for i in range(3)]
    job_id = make_job(db, owner, wowlab_hooks, iterations=60, chunks=6)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    leases = {c.node_id: coordinator.lease(c, 2) for c in nodes}
    forged = nodes[0].__class__(node_id=nodes[0].node_id, token="forged")
    beats = [
        (c, Heartbeat(running=[RunningChunk(x.chunk_id, x.lease_token) for x in leases[c.node_id]]))
        for c in nodes
    ]
    items = [(c, b, keyed(f"beat-{c.node_id}")) for c, b in beats]
    items.append((forged, Heartbeat(), keyed("beat-forged")))
    replies = coordinator.heartbeat_batch(items)
    assert replies[-1] == b"error AuthenticationFailed"
    assert all(r is not None and r.startswith(b"HeartbeatReply(") for r in replies[:-1])
    assert coordinator.heartbeat_batch(items[:1]) == replies[:1]  # a repeat: the stored answer

    engine = ToyEngine()
    prepared = engine.prepare(TOY)

    def result_of(lease: object) -> Completion:
        result = engine.run_chunk(
            prepared,
            seed=lease.seed,  # type: ignore[attr-defined]
            seed_offset=lease.seed_offset,  # type: ignore[attr-defined]
            iterations=lease.iterations,  # type: ignore[attr-defined]
        )
        return Completion(lease.chunk_id, lease.lease_token, result.to_dict())  # type: ignore[attr-defined]

    completes = [
        (c, [result_of(x) for x in leases[c.node_id]], keyed(f"done-{c.node_id}")) for c in nodes
    ]
    # The first node's request twice in one batch (resent while queued), and a forged one.
    batch = [*completes, completes[0], (forged, completes[1][1], keyed("done-forged"))]
    replies = coordinator.complete_batch(batch)
    coordinator.settle()  # the job is merged after the batch's call returned
    assert replies[0] == replies[3] and replies[0] is not None and b"accepted" in replies[0]
    assert replies[-1] == b"error AuthenticationFailed"
    with read_session(db) as s:
        chunks = s.exec(select(SimChunk).where(col(SimChunk.job_id) == job_id)).all()
        assert sorted(c.status for c in chunks) == ["completed"] * 6
        from wowlab_core.models import SimJob

        job = s.get(SimJob, job_id)
        assert job is not None and job.status == "completed" and job.completed_iterations == 60


@pytest.mark.parametrize("checked", [True, False], ids=["checked", "unchecked"])
def test_a_value_the_database_refuses_fails_only_its_own_request_of_a_batch(
    db: Engine, wowlab_hooks: Hooks, monkeypatch: pytest.MonkeyPatch, checked: bool
) -> None:
    """A metric name with NUL (PostgreSQL refuses it in JSON) from one node of a bridge's
    batch: the result is rejected (checked), and were a check ever to miss such a value,
    only that request fails (unchecked); the other node's result counts either way."""
    if not checked:
        monkeypatch.setattr("wowlab_core.results._storable", lambda name: True)
    owner, stranger = make_user(db, "owner"), make_user(db, "stranger")
    honest = make_node(db, owner, name="honest")[1]
    liar = make_node(db, stranger, name="liar")[1]
    honest_job = make_job(db, owner, wowlab_hooks, iterations=20, chunks=2)
    make_job(db, stranger, wowlab_hooks, iterations=20, chunks=2)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    [mine] = coordinator.lease(honest, 1)
    [theirs] = coordinator.lease(liar, 1)
    engine = ToyEngine()
    prepared = engine.prepare(TOY)

    def result_of(lease: object, **metrics: int) -> dict[str, object]:
        result = engine.run_chunk(
            prepared,
            seed=lease.seed,  # type: ignore[attr-defined]
            seed_offset=lease.seed_offset,  # type: ignore[attr-defined]
            iterations=lease.iterations,  # type: ignore[attr-defined]
        ).to_dict()
        result["metrics"] = {**result["metrics"], **metrics}
        return result

    poisoned = result_of(theirs, **{"damage\x00": 1})
    replies = coordinator.complete_batch(
        [
            (honest, [Completion(mine.chunk_id, mine.lease_token, result_of(mine))], keyed("h")),
            (liar, [Completion(theirs.chunk_id, theirs.lease_token, poisoned)], keyed("l")),
        ]
    )
    assert replies[0] is not None and b"accepted" in replies[0]
    refused_by_database = not checked and db.dialect.name == "postgresql"
    if checked:
        assert replies[1] is not None and b"rejected" in replies[1]
        assert b"not a valid name" in replies[1]
    elif refused_by_database:
        assert replies[1] == b"error InvalidRequest"
    else:  # SQLite stores the name: nothing to refuse
        assert replies[1] is not None and b"accepted" in replies[1]
    with read_session(db) as s:
        done = s.get(SimChunk, mine.chunk_id)
        theirs_now = s.get(SimChunk, theirs.chunk_id)
        assert done is not None and done.status == "completed" and done.job_id == honest_job
        assert theirs_now is not None
        if checked or refused_by_database:
            assert theirs_now.status == "leased" and theirs_now.result is None


def test_a_batch_of_heartbeats_writes_what_each_node_says_and_names_its_owner(
    db: Engine, wowlab_hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The batch reads and writes its nodes outside the ORM: a silent node comes back
    online with the engines and labels it advertises, each answer names the node's owner
    and sharing, and only the columns a heartbeat changes are written (on PostgreSQL, an
    owner renaming a node while its heartbeat is carried out keeps the new name)."""
    owner = make_user(db, "ada")
    _, a = make_node(db, owner, name="a")
    _, b = make_node(db, owner, name="b")
    with write_session(db) as s:
        node_a, node_b = s.get(Node, a.node_id), s.get(Node, b.node_id)
        assert node_a is not None and node_b is not None
        node_a.status = NodeStatus.OFFLINE.value
        node_a.last_seen_at = utcnow() - timedelta(hours=1)
        s.add(node_a)
        grant_access(s, node=node_b, access_type=AccessType.FRIENDS)
        s.commit()
    with read_session(db) as s:
        before = {n.id: n for n in s.exec(select(Node)).all()}
    renamed = db.dialect.name == "postgresql"
    read_beating_nodes = node_ops.read_beating_nodes

    def read_then_rename(*args: Any, **kwargs: Any) -> Any:
        views = read_beating_nodes(*args, **kwargs)
        if renamed:  # another connection, while the batch's transaction is open
            with db.connect() as conn:
                conn.execute(sa.update(Node).where(col(Node.id) == b.node_id).values(name="b2"))
                conn.commit()
        return views

    monkeypatch.setattr(node_ops, "read_beating_nodes", read_then_rename)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    beat_a = Heartbeat(engines={"toy": "1.2"}, labels=[" gpu ", "fast", "gpu"])
    replies = coordinator.heartbeat_batch([(a, beat_a, keyed("a")), (b, Heartbeat(), keyed("b"))])
    assert replies[0] is not None and b"owner='ada'" in replies[0]
    assert b"status='online'" in replies[0] and b"sharing='owner only'" in replies[0]
    assert replies[1] is not None and b"sharing='friends'" in replies[1]
    with read_session(db) as s:
        after = {n.id: n for n in s.exec(select(Node)).all()}
    new_a, old_a = after[a.node_id], before[a.node_id]
    assert new_a.status == NodeStatus.ONLINE.value
    assert new_a.last_seen_at is not None and old_a.last_seen_at is not None
    assert new_a.last_seen_at > old_a.last_seen_at
    assert new_a.engines == {"toy": "1.2"} and new_a.labels == ["fast", "gpu"]
    assert after[b.node_id].engines == before[b.node_id].engines  # None: no change
    assert after[b.node_id].name == ("b2" if renamed else "b")


def test_a_batch_writes_its_nodes_in_the_order_of_their_ids(db: Engine) -> None:
    """Concurrent batches lock node rows in one order (as the ORM's flush did), so two
    bridges' batches of the same nodes wait for each other instead of deadlocking."""
    owner = make_user(db, "owner")
    ids = [make_node(db, owner, name=f"n{i}")[1].node_id for i in range(3)]
    written: list[list[int]] = []

    def record(
        _conn: Any, _cursor: Any, statement: str, _params: Any, context: Any, *_: Any
    ) -> None:
        if statement.startswith("UPDATE nodes"):
            written.append([row["n_id"] for row in context.compiled_parameters])

    sa.event.listen(db, "before_cursor_execute", record)
    try:
        with db.connect() as conn:
            views = node_ops.read_beating_nodes(conn, ids, []).views
            for view in views.values():
                view.node.labels = ["gpu"]
            node_ops.save_nodes(conn, [views[i] for i in reversed(ids)])
            conn.commit()
    finally:
        sa.event.remove(db, "before_cursor_execute", record)
    assert written == [sorted(ids)]
    with read_session(db) as s:
        assert all(s.get(Node, i).labels == ["gpu"] for i in ids)  # type: ignore[union-attr]


def test_a_batch_of_heartbeats_reads_its_nodes_and_their_leases_in_one_query(
    db: Engine, wowlab_hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A batch's cost is mostly its round trips: the nodes, with their owners, grants and
    the chunks they hold, and which of the requests were carried out before, come in one
    query (then the writes), and what that query found decides the answers: a named
    lease is kept, an unnamed one handed back, a repeat gets the first answer."""
    owner = make_user(db, "owner")
    a, b = (make_node(db, owner, name=n, max_parallel=2)[1] for n in ("a", "b"))
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    make_job(db, owner, wowlab_hooks, iterations=40, chunks=4)
    kept, dropped = coordinator.lease(a, 2)
    # Only the batch's statements: no reaping first (the test's leases last 1 s).
    monkeypatch.setattr(coordinator, "_maybe_reap", lambda: None)
    beat = Heartbeat(running=[RunningChunk(kept.chunk_id, kept.lease_token, 2)])
    with selects(db) as reads:
        replies = coordinator.heartbeat_batch([(a, beat, keyed("a")), (b, Heartbeat(), keyed("b"))])
    [read] = reads  # the nodes, what they hold, which of the requests were carried out
    assert "sim_chunks" in read and "request_keys" in read
    assert replies[0] is not None
    assert b"released_chunks=[" + str(dropped.chunk_id).encode() + b"]" in replies[0]
    assert replies[1] is not None and b"released_chunks=[]" in replies[1]
    with read_session(db) as s:
        chunks = {x.id: x for x in s.exec(select(SimChunk)).all()}
    assert chunks[kept.chunk_id].status == "leased" and chunks[kept.chunk_id].progress == 2
    assert chunks[dropped.chunk_id].status == "pending"
    with selects(db) as reads:  # b's request again, and a's next one: b's stored answer
        again = coordinator.heartbeat_batch([(b, Heartbeat(), keyed("b")), (a, beat, keyed("a2"))])
    assert again[0] == replies[1] and again[1] is not None and b"released_chunks=[]" in again[1]
    assert len(reads) == 2 and "sim_chunks" not in reads[1]  # the stored answer


def test_a_heartbeat_alone_is_read_as_a_batch_of_one(
    db: Engine, wowlab_hooks: Hooks, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The portal's heartbeat (one node) reads its node, the chunks it holds and whether
    the request was carried out in one query, as a bridge's batch does, and answers as
    before: the named lease kept, the other handed back, a repeat refused with the first
    answer, a bad id (a bool is not node 1) or token refused."""
    owner = make_user(db, "ada")
    _, creds = make_node(db, owner, name="a", max_parallel=2)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    make_job(db, owner, wowlab_hooks, iterations=40, chunks=4)
    kept, dropped = coordinator.lease(creds, 2)
    monkeypatch.setattr(coordinator, "_maybe_reap", lambda: None)
    beat = Heartbeat(
        running=[RunningChunk(kept.chunk_id, kept.lease_token, 3)], engines={"toy": "2.0"}
    )
    with selects(db) as reads:
        reply = coordinator.heartbeat(creds, beat, keyed=keyed("alone"))
    assert len(reads) == 1 and "sim_chunks" in reads[0] and "request_keys" in reads[0]
    assert reply.released_chunks == [dropped.chunk_id] and reply.cancelled_chunks == []
    assert reply.owner == "ada" and reply.sharing == "owner only" and reply.status == "online"
    with read_session(db) as s:
        chunk = s.get(SimChunk, kept.chunk_id)
        node = s.get(Node, creds.node_id)
        assert chunk is not None and chunk.status == "leased" and chunk.progress == 3
        assert node is not None and node.engines == {"toy": "2.0"}
    with pytest.raises(RequestRepeated) as repeated:
        coordinator.heartbeat(creds, beat, keyed=keyed("alone"))
    assert repeated.value.reply == keyed("alone").ok(reply)
    assert creds.node_id == 1  # so that True would name it if a bool were taken for an id
    for bad in (replace(creds, node_id=True), replace(creds, token="forged")):
        with pytest.raises(AuthenticationFailed):
            coordinator.heartbeat(bad, Heartbeat())


@pytest.mark.parametrize(
    "engines, labels",
    [({"to\x00y": "1.0"}, None), ({"toy": "1.0\x00"}, None), (None, ["gp\x00u"]), (None, ["a\tb"])],
)
def test_control_characters_in_capabilities_are_refused_before_anything_is_written(
    db: Engine, wowlab_hooks: Hooks, engines: Any, labels: Any
) -> None:
    """PostgreSQL refuses NUL in JSON: a heartbeat that names one is a 4xx-style refusal
    for that node alone, not a database error that fails its whole batch."""
    owner = make_user(db, "owner")
    _, a = make_node(db, owner, name="a")
    _, b = make_node(db, owner, name="b")
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    with pytest.raises(InvalidRequest):
        coordinator.heartbeat(a, Heartbeat(engines=engines, labels=labels))
    bad = Heartbeat(engines=engines, labels=labels)
    replies = coordinator.heartbeat_batch([(a, bad, keyed("bad")), (b, Heartbeat(), keyed("b"))])
    assert replies[0] == b"error InvalidRequest"
    assert replies[1] is not None and replies[1].startswith(b"HeartbeatReply(")
    with read_session(db) as s:
        node = s.get(Node, a.node_id)
        assert node is not None and node.engines is None and node.labels in (None, [])


def test_a_repeated_heartbeat_gets_its_first_answer_whatever_its_key(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    """The batch's query learns which request keys are stored by joining them with
    commas; a key with a comma in it (not one that request_key makes) is looked up
    apart, and a repeat still gets the first answer instead of being carried out again,
    also when its node has gone since."""
    owner = make_user(db, "owner")
    _, creds = make_node(db, owner)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    answers = iter(range(10))
    for key in ("plain-key", "with,a,comma", ""):
        request = Keyed(
            key, ok=lambda _reply: f"answer {next(answers)}".encode(), error=lambda e: b"error"
        )
        first = coordinator.heartbeat_batch([(creds, Heartbeat(), request)])
        assert coordinator.heartbeat_batch([(creds, Heartbeat(), request)]) == first
    # A repeat whose node has gone since (the batch's query finds no node): its first
    # answer, not a refusal, as for any other repeat.
    answered = Keyed("gone", ok=lambda _reply: b"the first answer", error=lambda e: b"refused")
    first = coordinator.heartbeat_batch([(creds, Heartbeat(), answered)])
    with write_session(db) as s:
        s.execute(sa.delete(Node).where(col(Node.id) == creds.node_id))
        s.commit()
    assert coordinator.heartbeat_batch([(creds, Heartbeat(), answered)]) == first
    assert coordinator.heartbeat_batch([(creds, Heartbeat(), keyed("new"))]) == [
        b"error AuthenticationFailed"
    ]


def test_a_batch_of_heartbeats_does_what_each_heartbeat_alone_would(
    db: Engine, wowlab_hooks: Hooks
) -> None:
    """The set-based batch: named leases extended, unnamed ones handed back, cancelled
    ones reported, refusals change nothing, a node twice in one batch is carried out in
    order, and each answer is stored under its key."""
    owner = make_user(db, "owner")
    a, b, c = (make_node(db, owner, name=n, max_parallel=2)[1] for n in ("a", "b", "c"))
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    make_job(db, owner, wowlab_hooks, iterations=40, chunks=4)
    a_leases, b_leases = coordinator.lease(a, 2), coordinator.lease(b, 2)
    kept = a_leases[0]
    items = [
        (a, Heartbeat(running=[RunningChunk(kept.chunk_id, kept.lease_token, 3)]), keyed("a1")),
        (b, Heartbeat(running=[RunningChunk(x.chunk_id, "stolen") for x in b_leases]), keyed("b")),
        (c, "not a heartbeat", keyed("c")),  # type: ignore[list-item]
        (a, Heartbeat(running=[]), keyed("a2")),  # a's next beat: it now runs nothing
    ]
    replies = coordinator.heartbeat_batch(items)  # type: ignore[arg-type]
    assert replies[2] == b"error InvalidRequest"
    assert (
        replies[0] is not None
        and b"released_chunks=[" + str(a_leases[1].chunk_id).encode() + b"]" in replies[0]
    )
    # b named its chunks with wrong tokens: both handed back and reported as not its own.
    assert replies[1] is not None and b"cancelled_chunks=[" in replies[1]
    with read_session(db) as s:
        chunks = {x.id: x for x in s.exec(select(SimChunk)).all()}
        stored = set(s.exec(select(RequestKey.key)).all())
    for lease in [*b_leases, a_leases[1]]:
        assert chunks[lease.chunk_id].status == "pending" and chunks[lease.chunk_id].attempts == 0
    # a's second beat (after the first) handed back the chunk the first one kept.
    assert replies[3] is not None and str(kept.chunk_id).encode() in replies[3]
    assert chunks[kept.chunk_id].status == "pending"
    assert {keyed(n).key for n in ("a1", "b", "a2")} <= stored
    assert keyed("c").key not in stored  # a refusal is not stored: a fixed retry may pass
    assert coordinator.heartbeat_batch(items[:1]) == replies[:1]  # repeats: stored answers
