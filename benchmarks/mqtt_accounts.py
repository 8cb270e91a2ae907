"""What per-node broker accounts cost, as the pool grows.

Mosquitto's dynamic-security plugin rewrites its whole JSON file on every change, so
creating an account costs time proportional to the number of accounts. For each pool size:

- ``create``: the bridge creating one node account (two dynamic-security commands and
  their answer), timed over the last ``--sample`` accounts that filled the pool;
- ``register``: a node registering over MQTT, one at a time, as a new node does: connect
  as the registration identity, request, database row, account, answer;
- ``round trip``: the same-run baseline, a ``claim_status`` request on a connected node
  (a database read and write, no account change).

Mosquitto runs with the shipped settings (``wowlab mqtt setup-broker``); the bridge runs
in this process.

Usage::

    python benchmarks/mqtt_accounts.py                  # pools of 0, 1000, 3000 accounts
    python benchmarks/mqtt_accounts.py --sizes 0 500 --sample 20
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import anyio
from anyio.from_thread import start_blocking_portal

sys.path.insert(0, str(Path(__file__).parent))
from transport import SETTINGS, make_hooks, mosquitto, percentile

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import create_all, create_db_engine
from wowlab_core.protocol import NodeCredentials, NodeInfo
from wowlab_transport_mqtt.bridge import MqttBridge
from wowlab_transport_mqtt.client import MqttTransport


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[0, 1000, 3000])
    parser.add_argument("--sample", type=int, default=50)
    args = parser.parse_args(argv)
    print(f"{platform.node()}: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}", flush=True)
    print(
        f"{'accounts':>9}{'create p50':>12}{'p99':>9}{'register p50':>14}{'p99':>9}"
        f"{'round trip p50':>16}{'file KiB':>10}"
    )
    summary = []
    with tempfile.TemporaryDirectory(prefix="wowlab-accounts-") as tmp:
        directory = Path(tmp)
        db = create_db_engine(f"sqlite:///{directory / 'pool.db'}")
        create_all(db)
        coordinator = Coordinator(db, hooks=make_hooks(), settings=SETTINGS)
        with (
            mosquitto(directory) as (url, password_file),
            start_blocking_portal() as portal,
        ):
            bridge = MqttBridge(
                coordinator, url, password_file=password_file, registrations_per_minute=10**6
            )
            running = portal.start_task_soon(bridge.run)
            while bridge._client is None or not bridge._client.is_connected():
                time.sleep(0.05)
            made = 0
            for size in sorted(args.sizes):
                create: list[float] = []
                while made < max(size, args.sample):  # accounts of made-up nodes
                    started = time.perf_counter()
                    portal.call(bridge.accounts.create, 10**9 + made, f"token-{made}")
                    create.append(time.perf_counter() - started)
                    made += 1
                create = create[-args.sample :]
                register, baseline = anyio.run(sample, url, args.sample)
                made += args.sample
                kib = (directory / "dynamic-security.json").stat().st_size / 1024
                row = (
                    made,
                    1000 * percentile(create, 0.5),
                    1000 * percentile(create, 0.99),
                    1000 * percentile(register, 0.5),
                    1000 * percentile(register, 0.99),
                    1000 * percentile(baseline, 0.5),
                    kib,
                )
                summary.append(row)
                print(
                    f"{row[0]:>9}{row[1]:>10.1f}ms{row[2]:>7.1f}ms{row[3]:>12.1f}ms"
                    f"{row[4]:>7.1f}ms{row[5]:>14.1f}ms{row[6]:>10.0f}",
                    flush=True,
                )
            running.cancel()
    last = summary[-1]
    print(
        f"mqtt accounts: creating one takes {summary[0][1]:.1f} ms with {summary[0][0]} "
        f"accounts, {last[1]:.1f} ms with {last[0]}; registration p50 {last[3]:.1f} ms "
        f"(round trip {last[5]:.1f} ms)"
    )
    return 0


async def sample(url: str, count: int) -> tuple[list[float], list[float]]:
    transport = MqttTransport(url, timeout=60.0)
    register: list[float] = []
    baseline: list[float] = []
    creds: list[NodeCredentials] = []
    try:
        for i in range(count):
            started = time.perf_counter()
            reg = await transport.register(NodeInfo(name=f"bench-{i}"))
            register.append(time.perf_counter() - started)
            creds.append(NodeCredentials(reg.node_id, reg.token))
        await transport.claim_status(creds[0])  # connect first
        for _ in range(count):
            started = time.perf_counter()
            await transport.claim_status(creds[0])
            baseline.append(time.perf_counter() - started)
    finally:
        await transport.aclose()
    return register, baseline


if __name__ == "__main__":
    sys.exit(main())
