"""``wowlab node``: run this machine as a node of a pool."""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path

import anyio
import click
from rich.console import Console
from rich.panel import Panel

from wowlab_core import __version__
from wowlab_core.agent import AgentOptions, NodeAgent
from wowlab_core.claim_codes import format_claim_code
from wowlab_core.errors import InvalidRequest, WowlabError
from wowlab_core.node_lock import NodeLock
from wowlab_core.node_settings import NodeSettings, default_settings_path, platform_string
from wowlab_core.plugins import get_hooks
from wowlab_core.protocol import ClaimStatus, NodeCredentials, NodeInfo

log = logging.getLogger(__name__)


@click.group("node")
def node() -> None:
    """Run this machine as a compute node."""


@node.command("run")
@click.option("--transport", default=None, help="Transport name (local, http, mqtt, ...).")
@click.option(
    "--url", default=None, help="Where the coordinator is (portal URL, broker URL, database URL)."
)
@click.option(
    "--key",
    default=None,
    help="API key, for transports that need one (supabase: the project's anon key).",
)
@click.option("--name", default=None, help="Node name shown to its owner (default: host name).")
@click.option("--max-parallel", type=int, default=None, help="Simulations run at once.")
@click.option(
    "--max-chunk-seconds",
    type=float,
    default=None,
    help="Stop a chunk that runs longer than this (default 900; the pool's budget may be lower).",
)
@click.option(
    "--memory-cap-mb",
    type=float,
    default=None,
    help="Stop running chunks while this process uses more memory (default 2048; 0: no cap).",
)
@click.option(
    "--profile",
    default="default",
    show_default=True,
    help="Settings profile (several nodes on one machine).",
)
@click.option(
    "--settings-file",
    type=click.Path(path_type=Path),
    default=None,
    help="Settings file (default: in the data directory).",
)
def run(
    transport: str | None,
    url: str | None,
    key: str | None,
    name: str | None,
    max_parallel: int | None,
    max_chunk_seconds: float | None,
    memory_cap_mb: float | None,
    profile: str,
    settings_file: Path | None,
) -> None:
    """Register (once), show the claim code, then lease and run chunks until stopped."""
    path = settings_file or default_settings_path(profile)
    # One process per node identity: the desktop app or another `node run` may hold it.
    lock = NodeLock(path, program="wowlab node run")
    lock.acquire()
    try:
        _run(path, transport, url, key, name, max_parallel, max_chunk_seconds, memory_cap_mb)
    finally:
        lock.release()


def _run(
    path: Path,
    transport: str | None,
    url: str | None,
    key: str | None,
    name: str | None,
    max_parallel: int | None,
    max_chunk_seconds: float | None,
    memory_cap_mb: float | None,
) -> None:
    settings = NodeSettings.load(path) or NodeSettings()
    moved = (transport and transport != settings.transport) or (url and url != settings.url)
    if moved and settings.credentials is not None:
        # A different coordinator does not know our token: register anew there.
        settings.node_id = settings.token = None
    settings.transport = transport or settings.transport
    settings.url = url if url is not None else settings.url
    if name:
        settings.name = name
    if max_parallel is not None:
        if not 1 <= max_parallel <= 256:
            raise InvalidRequest("--max-parallel must be between 1 and 256", field="max_parallel")
        settings.max_parallel = max_parallel
    if max_chunk_seconds is not None:
        if not 0.1 <= max_chunk_seconds <= 86_400:
            raise InvalidRequest(
                "--max-chunk-seconds must be between 0.1 and 86400", field="max_chunk_seconds"
            )
        settings.max_chunk_seconds = max_chunk_seconds
    if memory_cap_mb is not None:
        if not (memory_cap_mb == 0 or 64 <= memory_cap_mb <= 2**30):
            raise InvalidRequest(
                "--memory-cap-mb must be 0 (no cap) or at least 64", field="memory_cap_mb"
            )
        settings.memory_cap_mb = memory_cap_mb or None
    hooks = get_hooks()
    factory = hooks.transport(settings.transport)
    settings.save(path)
    console = Console()

    def on_registered(creds: NodeCredentials) -> None:
        settings.node_id, settings.token = creds.node_id, creds.token
        settings.save(path)

    def on_claim_code(status: ClaimStatus) -> None:
        code = format_claim_code(status.claim_code or "")
        console.print(
            Panel.fit(
                "[bold]Claim this node[/bold] in your wowlab portal (My nodes, Claim a node)\n\n"
                f"claim code  [bold cyan]{code}[/bold cyan]"
                + (
                    f"\nvalid until {status.claim_expires_at:%H:%M} UTC"
                    if status.claim_expires_at
                    else ""
                ),
                title=settings.name,
            )
        )
        console.print(f"claim code: {code}", highlight=False)

    def on_event(event: str, data: dict[str, object]) -> None:
        if event == "claimed":
            console.print(f"claimed by {data.get('owner')}; waiting for work")
        elif event == "chunk-started":
            name = f" ({data['config_name']})" if data.get("config_name") else ""
            console.print(
                f"chunk {data['chunk_id']} started: job {data['job_id']}{name}, "
                f"{data['iterations']} iterations",
                highlight=False,
            )
        elif event == "chunk-completed":
            seconds = float(str(data["seconds"]))
            console.print(
                f"chunk {data['chunk_id']}: {data['iterations']} iterations "
                f"in {seconds:.2f} s ({data['outcome']})",
                highlight=False,
            )
        elif event == "chunk-failed":
            console.print(f"[red]chunk {data['chunk_id']} failed: {data['error']}[/red]")
        elif event == "chunk-cancelled":
            console.print(f"chunk {data['chunk_id']} cancelled (its job ended)", highlight=False)
        elif event == "chunk-over-budget":
            console.print(
                f"chunk {data['chunk_id']} over budget: stopped after {data['budget']} s "
                f"({data['iterations_done']} of {data['iterations']} iterations)",
                highlight=False,
            )
        elif event == "stopping":
            console.print(
                f"stopping; finishing {data['running']} running chunk(s) "
                "(Ctrl-C again to hand them back)"
            )

    async def main() -> None:
        transport_obj = factory(settings.url, key=key) if key else factory(settings.url)
        agent = NodeAgent(
            transport_obj,
            info=NodeInfo(
                name=settings.name,
                max_parallel=settings.max_parallel,
                cores=os.cpu_count(),
                platform=platform_string(),
                version=__version__,
            ),
            hooks=hooks,
            credentials=settings.credentials,
            options=AgentOptions(
                max_chunk_seconds=settings.max_chunk_seconds,
                memory_cap_mb=settings.memory_cap_mb,
            ),
            on_registered=on_registered,
            on_claim_code=on_claim_code,
            on_event=on_event,
        )
        try:
            async with anyio.create_task_group() as tg:

                async def watch_signals() -> None:
                    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
                        count = 0
                        async for _ in signals:
                            count += 1
                            if count == 1:
                                agent.stop()
                            elif count == 2:
                                console.print("handing running chunks back")
                                agent.stop(hand_back=True)
                            else:
                                tg.cancel_scope.cancel()
                                return

                tg.start_soon(watch_signals)
                try:
                    await agent.run()
                except WowlabError:
                    # Stopped while the coordinator could not be reached (registering, a
                    # claim check): nothing is lost, so this is a stop, not a failure.
                    if not agent.stopping:
                        raise
                finally:
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await transport_obj.aclose()

    console.print(f"wowlab node {settings.name!r} via {settings.transport} {settings.url}".rstrip())
    # Ctrl-C or SIGTERM is how a node is stopped: a clean stop exits with 0.
    anyio.run(main)
    console.print("node stopped")
