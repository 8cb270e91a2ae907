"""A job's page in a real browser while a node reports progress: the state in words, the
badge that changes with the status, thousands separators, the rate, a time left that never
rises while nothing new arrives; then the report, and its public link made, opened without
an account, and revoked. The node is driven from the test (no process), so each step is
known."""

from __future__ import annotations

import itertools
import re
import time
from dataclasses import replace

import httpx
import pytest
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.db import write_session
from wowlab_core.models import User
from wowlab_core.nodes import claim_node
from wowlab_core.plugins import Hooks
from wowlab_core.protocol import Completion, Heartbeat, NodeCredentials, NodeInfo, RunningChunk
from wowlab_core.testing.conformance import TOY_CONFIG, toy_result
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_portal.app import create_app

from .conftest import api_settings, make_account
from .server import serve
from .test_browser import ARTIFACTS, browser  # noqa: F401  (browser: a fixture)
from .world import run_all_chunks

pytestmark = pytest.mark.slow
PASSWORD = "correct horse battery"


def _clock_seconds(text: str) -> int:
    minutes, seconds = text.split(":")[-2:]
    hours = text.split(":")[0] if text.count(":") == 2 else "0"
    return int(hours) * 3600 + int(minutes) * 60 + int(seconds)


def test_progress_states_countdown_and_a_public_link(
    sqlite_db: Engine,
    wowlab_hooks: Hooks,
    browser: object,  # noqa: F811
) -> None:
    from playwright.sync_api import Browser, Page, expect

    assert isinstance(browser, Browser)
    ARTIFACTS.mkdir(exist_ok=True)
    coordinator = Coordinator(
        sqlite_db,
        hooks=wowlab_hooks,
        settings=replace(TEST_SETTINGS, lease_seconds=600.0, verify_rate=0.0),
    )
    ana = make_account(sqlite_db, "anabel", PASSWORD)
    errors: list[str] = []

    def shot(page: Page, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"job-page-{name}.png"), full_page=True)

    with serve(create_app(api_settings(), coordinator=coordinator)) as url:
        job = httpx.post(
            f"{url}/api/v1/jobs",
            json={"config": TOY_CONFIG, "iterations": 20_000, "name": "frost_mage"},
            headers=ana.headers,
        ).json()
        job_id = job["id"]
        page = browser.new_page(base_url=url)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.on(
            "console",
            lambda m: errors.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.goto("/login")
        page.fill("input[name=username]", "anabel")
        page.fill("input[name=password]", PASSWORD)
        page.get_by_role("button", name="Log in").click()
        page.goto(f"/jobs/{job_id}")
        expect(page.locator("h1")).to_contain_text("frost_mage · toy · 20,000 iterations")
        expect(page.locator("#state")).to_have_text(
            "waiting for a node: no node you can use is online"
        )
        expect(page.locator("#status .badge")).to_have_class("badge badge-pending")
        expect(page.locator("#total")).to_have_text("20,000")
        shot(page, "1-waiting")

        # A node of anabel's comes online and takes two chunks: the badge and state follow.
        reg = coordinator.register(NodeInfo(name="raid-rig", max_parallel=2))
        with write_session(sqlite_db) as s:
            user = s.get(User, ana.id)
            assert user is not None
            claim_node(s, user=user, code=reg.claim_code)
            s.commit()
        creds = NodeCredentials(node_id=reg.node_id, token=reg.token)
        leases = coordinator.lease(creds, 2)
        assert leases
        expect(page.locator("#status .badge")).to_have_class("badge badge-running")
        expect(page.locator("#status .badge")).to_have_text("running")
        expect(page.locator("#state")).to_have_text("running on 1 node")

        def beat(fraction: float) -> None:
            coordinator.heartbeat(
                creds,
                Heartbeat(
                    running=[
                        RunningChunk(le.chunk_id, le.lease_token, int(le.iterations * fraction))
                        for le in leases
                    ]
                ),
            )

        # Progress within the chunks, in two steps: the count moves, a rate appears.
        time.sleep(1.5)
        beat(0.02)
        time.sleep(1.5)
        beat(0.04)
        done = sum(int(le.iterations * 0.04) for le in leases)
        expect(page.locator("#iterations")).to_have_text(f"{done:,}")
        expect(page.locator("#rate")).to_contain_text("iterations/s")
        expect(page.locator("#eta")).to_have_text(re.compile(r"^\d+:\d\d(:\d\d)?$"))
        shot(page, "2-running")

        # Nothing new arrives: the time left counts down, never up.
        seen = []
        for _ in range(4):
            seen.append(_clock_seconds(page.locator("#eta").inner_text()))
            time.sleep(1.0)
        assert all(b <= a for a, b in itertools.pairwise(seen)), seen
        assert seen[-1] < seen[0], seen

        # The chunks end: the page turns into the report.
        coordinator.complete(
            creds,
            [Completion(le.chunk_id, le.lease_token, toy_result(le)) for le in leases],
        )
        run_all_chunks(coordinator, creds)
        expect(page.locator("#report")).to_contain_text("DPS ±", timeout=30_000)

        # A public link: made, shown once, opened without an account, revoked.
        page.get_by_role("button", name="Make a public link").click()
        link = page.locator("#share-url").input_value()
        assert re.fullmatch(rf"{re.escape(url)}/share/[\w-]{{40,}}", link), link
        shot(page, "3-link-made")
        stranger = browser.new_context().new_page()
        answer = stranger.goto(link)
        assert answer is not None and answer.status == 200
        assert answer.headers["referrer-policy"] == "no-referrer"
        assert "noindex" in answer.headers["x-robots-tag"]
        expect(stranger.locator("h1")).to_contain_text("frost_mage · toy · 20,000 iterations")
        expect(stranger.locator("#report")).to_contain_text("DPS ±")
        expect(stranger.locator("body")).not_to_contain_text("raid-rig")  # no node's name
        expect(stranger.locator("body")).not_to_contain_text("anabel")  # nor the owner's
        shot(stranger, "4-shared")
        page.goto("/jobs")  # the list names it, and says it is shared
        expect(page.locator("#jobs tbody tr").first).to_contain_text("frost_mage")
        expect(page.locator("#jobs tbody tr").first).to_contain_text("shared")
        page.goto(f"/jobs/{job_id}")
        page.on("dialog", lambda dialog: dialog.accept())
        page.get_by_role("button", name="Revoke link").click()
        expect(page.locator(".flash")).to_have_text("Public link revoked.")
        gone = stranger.goto(link)
        assert gone is not None and gone.status == 404
    assert errors == []
