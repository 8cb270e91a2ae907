"""Anonymous node registration through the RPC is rate-limited, per client address and in
all, as the portal's register route is; a refused registration answers 429 and adds no
node. The client address is the entry the proxy in front of PostgREST appended to
X-Forwarded-For (the rightmost, by default): entries left of it are the client's own word."""

from __future__ import annotations

import re

import httpx
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from wowlab_transport_supabase.testing import jwt
from wowlab_transport_supabase.testing.gateway import RpcGateway


def register(
    gateway: RpcGateway, address: str | None, name: str = "node", *, claimed: str = "192.0.2.1"
) -> httpx.Response:
    """Register through the gateway as a client the proxy saw at ``address``; the client
    itself claims to be ``claimed`` (the left entry, which it controls)."""
    headers = {"apikey": jwt.anon_key(), "Content-Type": "application/json"}
    if address is not None:
        headers["X-Forwarded-For"] = f"{claimed}, {address}"
    return httpx.post(
        f"{gateway.url}/rest/v1/rpc/node_register",
        json={"p_info": {"name": name, "max_parallel": 1}},
        headers=headers,
    )


def node_count(engine: Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("select count(*) from public.nodes")).scalar_one())


def set_limits(engine: Engine, per_address: int, total: int) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "update wowlab.settings set register_limit_per_minute = :a, "
                "register_limit_total_per_minute = :t"
            ),
            {"a": per_address, "t": total},
        )


def assert_refused(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    body = response.json()
    assert body["code"] == "RateLimited"
    assert re.fullmatch(r"too many node registrations; try again in \d+ s", body["message"])
    wait = int(body["message"].split()[-2])
    assert 1 <= wait <= 60


def test_registrations_are_limited_per_address_then_in_all(
    supabase_db: Engine, gateway: RpcGateway
) -> None:
    set_limits(supabase_db, per_address=3, total=5)
    for i in range(3):
        assert register(gateway, "203.0.113.7", f"a{i}").status_code == 200
    assert_refused(register(gateway, "203.0.113.7", "a3"))
    assert node_count(supabase_db) == 3  # the refused one added nothing

    # Claiming to be someone else in the header changes nothing: the proxy saw this client.
    assert_refused(register(gateway, "203.0.113.7", "a4", claimed="198.51.100.99"))
    # Other addresses still may, until the total for everyone is reached.
    assert register(gateway, "198.51.100.2", "b").status_code == 200
    assert register(gateway, "198.51.100.3", "c").status_code == 200
    assert_refused(register(gateway, "198.51.100.4", "d"))
    assert node_count(supabase_db) == 5

    # A minute later the window has passed.
    with supabase_db.begin() as conn:
        conn.execute(
            sa.text(
                "update wowlab.register_attempts "
                "set attempted_at = attempted_at - interval '61 seconds'"
            )
        )
    assert register(gateway, "203.0.113.7", "a-again").status_code == 200
    assert node_count(supabase_db) == 6


def test_without_the_header_the_database_client_address_counts(
    supabase_db: Engine, gateway: RpcGateway
) -> None:
    set_limits(supabase_db, per_address=2, total=100)
    assert register(gateway, None, "x").status_code == 200
    assert register(gateway, None, "y").status_code == 200
    assert_refused(register(gateway, None, "z"))
    # A forwarded address is another client.
    assert register(gateway, "192.0.2.9", "w").status_code == 200


def test_the_header_and_the_proxies_in_front_are_settings(
    supabase_db: Engine, gateway: RpcGateway
) -> None:
    set_limits(supabase_db, per_address=1, total=100)
    with supabase_db.begin() as conn:  # behind two proxies that append
        conn.execute(sa.text("update wowlab.settings set client_address_hops = 2"))
    # "claimed, seen-by-the-outer-proxy, inner-proxy": the middle entry counts.
    assert register(gateway, "10.0.0.1", "a", claimed="192.0.2.1, 203.0.113.7").status_code == 200
    assert_refused(register(gateway, "10.0.0.1", "b", claimed="192.0.2.2, 203.0.113.7"))
    assert register(gateway, "10.0.0.1", "c", claimed="192.0.2.2, 203.0.113.8").status_code == 200
    with supabase_db.begin() as conn:  # an edge that sets its own header
        conn.execute(
            sa.text(
                "update wowlab.settings set client_address_header = 'CF-Connecting-IP', "
                "client_address_hops = 1"
            )
        )
    headers = {"apikey": jwt.anon_key(), "Content-Type": "application/json"}
    url = f"{gateway.url}/rest/v1/rpc/node_register"
    body = {"p_info": {"name": "d", "max_parallel": 1}}
    first = httpx.post(url, json=body, headers={**headers, "CF-Connecting-IP": "198.51.100.5"})
    assert first.status_code == 200
    assert_refused(
        httpx.post(url, json=body, headers={**headers, "CF-Connecting-IP": "198.51.100.5"})
    )


def test_the_defaults_match_the_portal_and_anon_cannot_read_the_attempts(
    supabase_db: Engine, gateway: RpcGateway
) -> None:
    from wowlab_portal.settings import PortalSettings

    with supabase_db.connect() as conn:
        per_address, total = conn.execute(
            sa.text(
                "select register_limit_per_minute, register_limit_total_per_minute "
                "from wowlab.settings"
            )
        ).one()
    assert per_address == PortalSettings().register_limit_per_minute == 60
    assert total == 600
    assert register(gateway, "203.0.113.7").status_code == 200
    with supabase_db.connect() as conn:
        for role in ("anon", "authenticated"):
            readable, callable_ = conn.execute(
                sa.text(
                    "select has_table_privilege(:role, 'wowlab.register_attempts', 'select'), "
                    "has_function_privilege(:role, 'wowlab.count_registration()', 'execute')"
                ),
                {"role": role},
            ).one()
            assert readable is False and callable_ is False, role
