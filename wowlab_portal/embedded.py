"""``wowlab up``: the embedded default, everything on this PC in one process.

The portal (on the SQLite file in the data directory unless a database URL is given)
is served by uvicorn in a thread; K nodes run as :class:`~wowlab_core.agent.NodeAgent`
s in the main thread's event loop and talk to the served portal with the ``http``
transport, exactly as a node on another PC does. That costs a few local HTTP calls per
chunk (chunks last seconds), and buys one code path: what ``wowlab up`` shows is what a
real pool does, the nodes appear in ``/metrics`` and on the pages like any other, and
Ctrl-C stops one process. The engine runs in the agents' worker threads without the GIL,
so the portal keeps answering while they simulate.

On the first run an ``admin`` account is made with a generated password (printed once);
the nodes are claimed by it, and the CLI's login (URL and an API token) is stored so
``wowlab submit`` works right away. The nodes' credentials are kept in
``<data dir>/up/`` so a restart brings back the same nodes.
"""

from __future__ import annotations

import logging
import os
import secrets
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread
import uvicorn
from fastapi import FastAPI
from pwdlib import PasswordHash
from sqlalchemy.engine import Engine as DbEngine

from wowlab_core import __version__
from wowlab_core.agent import AgentOptions, NodeAgent
from wowlab_core.db import data_dir, read_session, write_session
from wowlab_core.errors import AuthenticationFailed, InvalidRequest, WowlabError
from wowlab_core.http_client import HttpTransport
from wowlab_core.models import Node, User
from wowlab_core.node_settings import NodeSettings, platform_string
from wowlab_core.nodes import claim_and_announce
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import ClaimStatus, NodeCredentials, NodeInfo
from wowlab_core.scheduler import tokens_match
from wowlab_portal.accounts import create_api_token, create_user, find_user, user_for_token
from wowlab_portal.login_store import PortalLogin

log = logging.getLogger(__name__)

ADMIN_USERNAME = "admin"
MAX_NODES = 64
#: How long a stopping node may finish its running chunk before handing it back.
DRAIN_SECONDS = 10.0
#: How long ``wowlab up`` waits for its nodes to be claimed before saying it is up anyway.
READY_TIMEOUT_SECONDS = 60.0


# --- the first admin and the CLI's login ----------------------------------------------


@dataclass(frozen=True)
class Admin:
    """The admin account; ``password`` only when it was made just now."""

    user: User
    password: str | None


def ensure_admin(db: DbEngine, *, passwords: PasswordHash) -> Admin:
    """The ``admin`` account, made on the first run with a generated password."""
    with write_session(db) as session:
        user = find_user(session, username=ADMIN_USERNAME)
        if user is not None:
            return Admin(user=user, password=None)
        password = secrets.token_urlsafe(12)
        user = create_user(
            session,
            username=ADMIN_USERNAME,
            password=password,
            passwords=passwords,
            is_admin=True,
        )
        session.commit()
        session.refresh(user)
        return Admin(user=user, password=password)


def cli_login(db: DbEngine, *, user: User, url: str, stored: PortalLogin | None) -> PortalLogin:
    """The CLI's login to this portal as ``user``: the stored token if this database
    knows it as theirs, else a new one."""
    if stored is not None:
        with read_session(db) as session:
            try:
                owner, _ = user_for_token(session, token=stored.token)
            except AuthenticationFailed:
                owner = None
        if owner is not None and owner.id == user.id:
            return PortalLogin(url=url, token=stored.token, username=user.username)
    with write_session(db) as session:
        new = create_api_token(session, user=user, name="wowlab up (CLI)")
        session.commit()
    return PortalLogin(url=url, token=new.token, username=user.username)


# --- the nodes' settings --------------------------------------------------------------


def node_settings_path(index: int) -> Path:
    """``<data dir>/up/node-<index>.json``."""
    return data_dir() / "up" / f"node-{index}.json"


def load_node_settings(db: DbEngine, *, index: int, pool: str, owner: User) -> NodeSettings:
    """Node ``index``'s settings, with its credentials only if this database still knows
    them as a node of ``owner`` (or an unclaimed one)."""
    settings = NodeSettings.load(node_settings_path(index)) or NodeSettings(
        name=f"local-{index}", max_parallel=1
    )
    settings.transport = "http"
    creds = settings.credentials
    known = False
    if creds is not None and settings.url == pool:
        with read_session(db) as session:
            node = session.get(Node, creds.node_id)
            known = (
                node is not None
                and tokens_match(creds.token, node.token_hash)
                and node.user_id in (None, owner.id)
            )
    if not known:
        settings.node_id = settings.token = None
    settings.url = pool
    return settings


# --- the server -----------------------------------------------------------------------


def listen(host: str, port: int) -> socket.socket:
    """A socket bound to ``host:port`` (port 0: one the OS picks)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise InvalidRequest(
            f"cannot listen on {host}:{port}: {exc.strerror}", field="port"
        ) from None
    return sock


def local_url(sock: socket.socket) -> str:
    """The URL this PC reaches the bound socket at (a wildcard address becomes loopback)."""
    host, port = sock.getsockname()[:2]
    if host in ("0.0.0.0", ""):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


@contextmanager
def serve_in_thread(
    app: FastAPI, sock: socket.socket, *, timeout: float = 30.0
) -> Iterator[threading.Thread]:
    """Serve ``app`` on ``sock`` with uvicorn in a thread until the block ends.

    Out of the main thread uvicorn leaves the signals alone: ``wowlab up`` handles them,
    to stop its nodes before the portal they talk to.
    """
    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        lifespan="on",
        proxy_headers=False,  # the app honours X-Forwarded-For from trusted proxies only
        timeout_keep_alive=30,
        # Open long polls of nodes must not hold the shutdown up for long.
        timeout_graceful_shutdown=2,
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="wowlab-portal", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + timeout
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            server.should_exit = True
            sock.close()
            raise WowlabError("the portal did not start (see the log above)")
        time.sleep(0.02)
    try:
        yield thread
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()


# --- the nodes ------------------------------------------------------------------------


@dataclass(frozen=True)
class LocalNodes:
    """What the nodes need: the portal's URL, its database (to claim them) and hooks."""

    url: str
    db: DbEngine
    hooks: Hooks
    owner_id: int
    settings: list[NodeSettings]


async def run_nodes(
    nodes: LocalNodes,
    *,
    on_ready: Callable[[int], None],
    portal_alive: Callable[[], bool],
) -> None:
    """Run the nodes until SIGINT or SIGTERM (or the portal dies); ``on_ready`` gets the
    number of nodes at work once all are claimed (or after a while).

    The first signal lets running chunks finish (for up to ``DRAIN_SECONDS``), the second
    hands them back at once, the third gives up waiting for the nodes.
    """
    stopping = anyio.Event()
    agents: list[NodeAgent] = []

    def stop_all(*, hand_back: bool) -> None:
        stopping.set()
        for agent in agents:
            agent.stop(hand_back=hand_back)

    async def watch_signals(scope: anyio.CancelScope) -> None:
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            count = 0
            async for _ in signals:
                count += 1
                stop_all(hand_back=count > 1)
                if count > 2:
                    scope.cancel()

    async def watch_portal() -> None:
        while portal_alive():
            await anyio.sleep(0.5)
        log.error("the portal stopped; stopping the nodes")
        stop_all(hand_back=True)

    async with anyio.create_task_group() as watchers:
        watchers.start_soon(watch_signals, watchers.cancel_scope)
        watchers.start_soon(watch_portal)
        async with anyio.create_task_group() as tg:

            async def claim(code: str) -> None:
                # The admin claims each node with the code it shows, as a person would.
                try:
                    await anyio.to_thread.run_sync(
                        lambda: claim_and_announce(
                            nodes.db, user_id=nodes.owner_id, code=code, hooks=nodes.hooks
                        )
                    )
                except WowlabError as exc:
                    log.warning("could not claim a local node with %s: %s", code, exc.message)

            def claim_soon(status: ClaimStatus) -> None:
                tg.start_soon(claim, status.claim_code or "")

            for index, settings in enumerate(nodes.settings, start=1):
                agent = _make_agent(nodes, settings, index, claim_soon)
                agents.append(agent)
                tg.start_soon(_run_agent, agent)

            with anyio.move_on_after(READY_TIMEOUT_SECONDS):
                while not stopping.is_set() and not all(_at_work(a) for a in agents):
                    await anyio.sleep(0.05)
            if not stopping.is_set():
                on_ready(sum(_at_work(a) for a in agents))
            # The agents run until stopped; this block ends when all have said goodbye.
        watchers.cancel_scope.cancel()


def _at_work(agent: NodeAgent) -> bool:
    return agent.stats.state in ("idle", "working")


async def _run_agent(agent: NodeAgent) -> None:
    try:
        await agent.run()
    except WowlabError as exc:
        log.error("node %s stopped: %s", agent.info.name, exc.message)
    finally:
        with anyio.CancelScope(shield=True):
            await agent.transport.aclose()


def _make_agent(
    nodes: LocalNodes,
    settings: NodeSettings,
    index: int,
    on_claim_code: Callable[[ClaimStatus], None],
) -> NodeAgent:
    path = node_settings_path(index)

    def on_registered(creds: NodeCredentials) -> None:
        settings.node_id, settings.token = creds.node_id, creds.token
        settings.save(path)

    settings.save(path)
    return NodeAgent(
        HttpTransport(nodes.url),
        info=NodeInfo(
            name=settings.name,
            max_parallel=settings.max_parallel,
            cores=os.cpu_count(),
            platform=platform_string(),
            version=__version__,
        ),
        hooks=nodes.hooks,
        credentials=settings.credentials,
        options=AgentOptions(drain_seconds=DRAIN_SECONDS),
        on_registered=on_registered,
        on_claim_code=on_claim_code,
    )


__all__ = [
    "ADMIN_USERNAME",
    "MAX_NODES",
    "Admin",
    "LocalNodes",
    "cli_login",
    "ensure_admin",
    "listen",
    "load_node_settings",
    "local_url",
    "node_settings_path",
    "run_nodes",
    "serve_in_thread",
]
