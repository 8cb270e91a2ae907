"""Every hook of wowlab_core.hookspecs, called by the code path that uses it."""

from __future__ import annotations

from typing import Any

import click
import pytest
from click.testing import CliRunner
from sqlalchemy.engine import Engine
from sqlmodel import select

from wowlab_core.access import grant_access, usable_nodes
from wowlab_core.agent import NodeAgent
from wowlab_core.cache import CacheSettings
from wowlab_core.coordinator import Coordinator
from wowlab_core.db import read_session, write_session
from wowlab_core.errors import EngineUnavailable, InvalidRequest
from wowlab_core.hookspecs import hookimpl
from wowlab_core.models import AccessType, Guild, Node, SimChunk, User
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import Completion, NodeInfo
from wowlab_core.testing.conformance import toy_result
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_core.transport_local import LocalTransport

from .helpers import make_job, make_node, make_user

pytestmark = pytest.mark.usefixtures("wowlab_hooks")


def test_wowlab_register_engines(wowlab_hooks: Hooks, register_plugin: Any) -> None:
    class Second:
        @hookimpl
        def wowlab_register_engines(self, register: Any) -> None:
            engine = type("E", (), {"name": "second", "version": "0"})()
            register(engine)

    register_plugin(Second())
    assert {"toy", "second"} <= set(wowlab_hooks.engines())
    assert wowlab_hooks.engine("second").version == "0"

    class Clash:
        @hookimpl
        def wowlab_register_engines(self, register: Any) -> None:
            register(type("E", (), {"name": "toy", "version": "9"})())

    clash = register_plugin(Clash())
    # The later plugin is set aside as broken; the first one's engine and the rest still work.
    engines = wowlab_hooks.engines()
    assert engines["toy"].version != "9" and "second" in engines
    [problem] = wowlab_hooks.state.problems
    assert problem.stage == "register" and problem.kind == "broken"
    assert "an engine named 'toy' is registered by toy-engine already" in problem.reason
    assert not wowlab_hooks.pm.is_registered(clash)
    # Asked for an engine that is not there, the error names the plugin that failed to
    # load (an engine's plugin may be the reason: numba that cannot cache, say).
    with pytest.raises(EngineUnavailable) as raised:
        wowlab_hooks.engine("numba")
    assert raised.value.message == (
        f"unknown engine 'numba' (installed: second, toy); plugins that did not load: "
        f"{problem.name!r} (see `wowlab plugins`)"
    )


def test_wowlab_register_transports(wowlab_hooks: Hooks, register_plugin: Any) -> None:
    assert "local" in wowlab_hooks.transports()

    class Pigeon:
        @hookimpl
        def wowlab_register_transports(self, register: Any) -> None:
            register("pigeon", lambda url, **kw: ("pigeon", url))

    register_plugin(Pigeon())
    assert wowlab_hooks.transport("pigeon")("coop://1") == ("pigeon", "coop://1")


def test_wowlab_register_commands(wowlab_hooks: Hooks, register_plugin: Any) -> None:
    class Commands:
        @hookimpl
        def wowlab_register_commands(self, cli: click.Group) -> None:
            @cli.command("ping")
            def ping() -> None:
                click.echo("pong")

    register_plugin(Commands())
    group = click.Group("wowlab")
    wowlab_hooks.register_commands(group)
    result = CliRunner().invoke(group, ["ping"])
    assert result.exit_code == 0 and result.output == "pong\n"


def test_wowlab_claim_code(sqlite_db: Engine, wowlab_hooks: Hooks, register_plugin: Any) -> None:
    class FixedCode:
        code = "ZZZ234"

        @hookimpl
        def wowlab_claim_code(self) -> str:
            return self.code

    plugin = register_plugin(FixedCode())
    node, _ = make_node(sqlite_db, None, hooks=wowlab_hooks)
    assert node.claim_code == "ZZZ234"
    plugin.code = "bad!!!"
    with pytest.raises(InvalidRequest, match="invalid claim code"):
        make_node(sqlite_db, None, hooks=wowlab_hooks)


def test_wowlab_node_claimed(sqlite_db: Engine, wowlab_hooks: Hooks, register_plugin: Any) -> None:
    seen: list[tuple[str, str]] = []

    class Listener:
        @hookimpl
        def wowlab_node_claimed(self, node: Node, user: User) -> None:
            seen.append((node.name, user.username))

    register_plugin(Listener())
    from wowlab_core.localpool import run_local_simulation

    run = run_local_simulation(
        {"base_dps": 10}, hooks=wowlab_hooks, iterations=20, nodes=2, engine_name="toy"
    )
    assert run.status == "completed"
    assert sorted(seen) == [("local-1", "local"), ("local-2", "local")]


def test_wowlab_node_removed_by_the_stale_node_cleanup(
    sqlite_db: Engine,
    wowlab_hooks: Hooks,
    register_plugin: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import timedelta

    import wowlab_core.plugins
    from wowlab_core.cli import cli
    from wowlab_core.models import utcnow

    seen: list[tuple[int, Any]] = []

    class Listener:
        @hookimpl
        def wowlab_node_removed(self, node_id: int, user: User | None) -> None:
            seen.append((node_id, user))

    register_plugin(Listener())
    monkeypatch.setattr(wowlab_core.plugins, "get_hooks", lambda: wowlab_hooks)
    stale, _ = make_node(sqlite_db, None, name="stale")
    fresh, _ = make_node(sqlite_db, None, name="fresh")
    with write_session(sqlite_db) as s:
        row = s.get(Node, stale.id)
        assert row is not None
        row.last_seen_at = utcnow() - timedelta(days=31)
        s.add(row)
        s.commit()
    result = CliRunner().invoke(
        cli, ["db", "cleanup", "--database-url", str(sqlite_db.url), "--days", "30"]
    )
    assert result.exit_code == 0, result.output
    assert "deleted 1 stale node(s)" in result.output
    assert seen == [(stale.id, None)]
    with read_session(sqlite_db) as s:
        assert s.get(Node, fresh.id) is not None and s.get(Node, stale.id) is None


def test_wowlab_plan_chunks(sqlite_db: Engine, wowlab_hooks: Hooks, register_plugin: Any) -> None:
    from wowlab_core.planning import ChunkPlan

    class Halves:
        @hookimpl
        def wowlab_plan_chunks(self, job: Any, capacity: Any) -> list[ChunkPlan]:
            half = capacity.iterations // 2
            return [
                ChunkPlan(capacity.start, half),
                ChunkPlan(capacity.start + half, capacity.iterations - half),
            ]

    register_plugin(Halves())
    user = make_user(sqlite_db, "u")
    job_id = make_job(sqlite_db, user, wowlab_hooks, iterations=101, chunks=None)
    with read_session(sqlite_db) as s:
        sizes = sorted(
            c.iterations for c in s.exec(select(SimChunk).where(SimChunk.job_id == job_id))
        )
    assert sizes == [50, 51]

    class Broken:
        @hookimpl(tryfirst=True)
        def wowlab_plan_chunks(self, job: Any, capacity: Any) -> list[ChunkPlan]:
            return [ChunkPlan(0, 10)]  # leaves a gap

    register_plugin(Broken())
    with pytest.raises(ValueError, match="cover up to 10"):
        make_job(sqlite_db, user, wowlab_hooks, iterations=100, chunks=None)


def test_wowlab_chunk_size(sqlite_db: Engine, wowlab_hooks: Hooks, register_plugin: Any) -> None:
    calls: list[int] = []

    class Sizer:
        @hookimpl
        def wowlab_chunk_size(self, job: Any, capacity: Any) -> int:
            calls.append(capacity.iterations)
            return 30

    register_plugin(Sizer())
    user = make_user(sqlite_db, "u")
    job_id = make_job(sqlite_db, user, wowlab_hooks, iterations=100, chunks=None)
    with read_session(sqlite_db) as s:
        sizes = [
            c.iterations
            for c in s.exec(
                select(SimChunk).where(SimChunk.job_id == job_id).order_by(SimChunk.seed_offset)
            )
        ]
    assert sizes == [30, 30, 30, 10] and calls == [100]


def test_wowlab_config_cache(tmp_path: Any, wowlab_hooks: Hooks, register_plugin: Any) -> None:
    class DictCache:
        def __init__(self) -> None:
            self.store: dict[str, Any] = {}
            self.gets = 0

        def get(self, config_hash: str) -> Any:
            self.gets += 1
            return self.store.get(config_hash)

        def put(self, config_hash: str, config: Any) -> None:
            self.store[config_hash] = config

    cache = DictCache()

    class Provider:
        @hookimpl
        def wowlab_config_cache(self, settings: CacheSettings) -> DictCache:
            return cache

    register_plugin(Provider())
    assert wowlab_hooks.config_cache(settings=CacheSettings()) is cache
    agent = NodeAgent(LocalTransport(None), info=NodeInfo(name="n"), hooks=wowlab_hooks)  # type: ignore[arg-type]
    assert agent.cache is cache


def test_wowlab_can_use_node(sqlite_db: Engine, wowlab_hooks: Hooks, register_plugin: Any) -> None:
    owner = make_user(sqlite_db, "owner")
    mallory = make_user(sqlite_db, "mallory")
    node, creds = make_node(sqlite_db, owner)
    with write_session(sqlite_db) as s:
        grant_access(s, node=node, access_type=AccessType.PUBLIC)
        s.commit()

    class Deny:
        @hookimpl
        def wowlab_can_use_node(self, user: User, node: Node, grants: Any) -> bool:
            return user.username != "mallory"

    register_plugin(Deny())
    with read_session(sqlite_db) as s:
        assert usable_nodes(s, mallory, hooks=wowlab_hooks) == []
        assert [n.id for n in usable_nodes(s, owner, hooks=wowlab_hooks)] == [node.id]
    make_job(sqlite_db, mallory, wowlab_hooks, iterations=10, chunks=1)
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    assert coordinator.lease(creds, 5) == []  # the veto also holds when leasing
    make_job(sqlite_db, owner, wowlab_hooks, iterations=10, chunks=1)
    assert len(coordinator.lease(creds, 5)) == 1


def test_wowlab_user_groups(sqlite_db: Engine, wowlab_hooks: Hooks, register_plugin: Any) -> None:
    owner = make_user(sqlite_db, "owner")
    raider = make_user(sqlite_db, "raider")
    node, creds = make_node(sqlite_db, owner)
    with write_session(sqlite_db) as s:
        guild = Guild(name="Method", owner_id=owner.id)
        s.add(guild)
        s.flush()
        grant_access(s, node=node, access_type=AccessType.GUILD, target_id=guild.id)
        s.commit()
    with read_session(sqlite_db) as s:
        assert usable_nodes(s, raider, hooks=wowlab_hooks) == []

    class Roster:
        @hookimpl
        def wowlab_user_groups(self, user: User) -> list[int]:
            return [guild.id or 0] if user.username == "raider" else []

    register_plugin(Roster())
    with read_session(sqlite_db) as s:
        assert [n.id for n in usable_nodes(s, raider, hooks=wowlab_hooks)] == [node.id]
    make_job(sqlite_db, raider, wowlab_hooks, iterations=10, chunks=1)
    assert (
        len(Coordinator(sqlite_db, hooks=wowlab_hooks, settings=TEST_SETTINGS).lease(creds, 5)) == 1
    )


def test_wowlab_chunk_completed_and_wowlab_job_finished(
    sqlite_db: Engine, wowlab_hooks: Hooks, register_plugin: Any
) -> None:
    events: list[tuple[str, Any]] = []

    class Listener:
        @hookimpl
        def wowlab_chunk_completed(self, chunk: SimChunk, result: Any) -> None:
            events.append(("chunk", (chunk.seed_offset, result.count)))

        @hookimpl
        def wowlab_job_finished(self, job: Any) -> None:
            events.append(("job", job.status))

    class Crashing:
        @hookimpl
        def wowlab_chunk_completed(self, chunk: SimChunk, result: Any) -> None:
            raise RuntimeError("listener bug")

    register_plugin(Listener())
    register_plugin(Crashing())  # a failing listener must not break completion
    owner = make_user(sqlite_db, "owner")
    _, creds = make_node(sqlite_db, owner)
    make_job(sqlite_db, owner, wowlab_hooks, iterations=20, chunks=2)
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    leases = coordinator.lease(creds, 5)
    done = [Completion(le.chunk_id, le.lease_token, toy_result(le)) for le in leases]
    coordinator.complete(creds, done)
    coordinator.complete(creds, done)  # duplicates announce nothing
    assert coordinator.settle()  # the job is merged (and announced) by the finisher
    assert wowlab_hooks.flush_events(timeout=10)
    assert events == [("chunk", (0, 10)), ("chunk", (10, 10)), ("job", "completed")]


def test_wowlab_job_finished_on_failure(
    sqlite_db: Engine, wowlab_hooks: Hooks, register_plugin: Any
) -> None:
    finished: list[str] = []

    class Listener:
        @hookimpl
        def wowlab_job_finished(self, job: Any) -> None:
            finished.append(f"{job.status}: {job.error}")

    register_plugin(Listener())

    from wowlab_core.localpool import run_local_simulation

    run = run_local_simulation(
        {"fail": 1}, hooks=wowlab_hooks, iterations=10, nodes=1, engine_name="toy"
    )
    assert run.status == "failed" and run.report is None
    assert (
        len(finished) == 1
        and finished[0].startswith("failed: chunk")
        and "toy engine told to fail" in finished[0]
    )


def test_chunk_listeners_see_each_stored_chunk_on_every_database(
    db: Engine, wowlab_hooks: Hooks, register_plugin: Any
) -> None:
    """PostgreSQL stores a node's results on its owner's jobs in one statement: the
    chunks its listeners get are built from that statement's rows, as SQLite's are."""
    seen: list[tuple[int, str, int | None, int, bool]] = []

    class Listener:
        @hookimpl
        def wowlab_chunk_completed(self, chunk: SimChunk, result: Any) -> None:
            same = chunk.result is not None and chunk.result["count"] == result.count
            seen.append(
                (chunk.seed_offset, chunk.status, chunk.computed_by, chunk.iterations, same)
            )

    register_plugin(Listener())
    owner = make_user(db, "owner")
    node, creds = make_node(db, owner, max_parallel=2)
    make_job(db, owner, wowlab_hooks, iterations=20, chunks=2)
    coordinator = Coordinator(db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    leases = coordinator.lease(creds, 2)
    coordinator.complete(
        creds, [Completion(le.chunk_id, le.lease_token, toy_result(le)) for le in leases]
    )
    assert wowlab_hooks.flush_events(timeout=10)
    assert sorted(seen) == [
        (0, "completed", node.id, 10, True),
        (10, "completed", node.id, 10, True),
    ]
