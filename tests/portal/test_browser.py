"""The portal's pages in a real browser (Playwright driving Debian's Chromium), with a real
node process: issue 4's acceptance flow, screenshotting each page to ``tests/artifacts/``."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.plugins import Hooks
from wowlab_core.testing.conformance import TOY_CONFIG
from wowlab_core.testing.databases import missing_part
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_core.testing.processes import WowlabProcess
from wowlab_portal.app import create_app

from .conftest import api_settings
from .server import serve
from .test_cli import processes  # noqa: F401  (processes: a fixture)

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--disable-sync", "--no-first-run",
]  # fmt: skip

pytestmark = pytest.mark.slow


@pytest.fixture
def browser() -> Iterator[object]:
    if not CHROMIUM.exists() and shutil.which("chromium") is None:
        missing_part(
            "Chromium", "apt-get install chromium, or scripts/ensure-services --with-chromium"
        )
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        missing_part("Playwright", "pip install playwright (the dev extra)")
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def test_sign_up_claim_share_submit_and_read_the_report(
    sqlite_db: Engine,
    wowlab_hooks: Hooks,
    tmp_path: Path,
    browser: object,
    processes: list[WowlabProcess],  # noqa: F811
) -> None:
    from playwright.sync_api import Browser, Page, expect

    assert isinstance(browser, Browser)
    ARTIFACTS.mkdir(exist_ok=True)
    coordinator = Coordinator(
        sqlite_db, hooks=wowlab_hooks, settings=replace(TEST_SETTINGS, lease_seconds=30)
    )
    settings = api_settings(claim_recheck_seconds=1.0)

    def shot(page: Page, name: str) -> None:
        page.screenshot(path=str(ARTIFACTS / f"browser-{name}.png"), full_page=True)

    # Every page runs under the portal's Content-Security-Policy (no inline script or
    # style): Chromium reports each thing it blocks on the console.
    violations: list[str] = []

    def new_page(url: str) -> Page:
        page = browser.new_page(base_url=url)
        page.on(
            "console",
            lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
        )
        page.on("pageerror", lambda e: violations.append(f"page error: {e}"))
        return page

    with serve(create_app(settings, coordinator=coordinator)) as url:
        alice = new_page(url)
        alice.goto("/signup")
        shot(alice, "01-signup")
        alice.fill("input[name=username]", "alice")
        alice.fill("input[name=password]", "correct horse battery")
        alice.click("text=Create account")
        expect(alice.locator("h1")).to_have_text("My nodes")
        shot(alice, "02-my-nodes-empty")

        node = WowlabProcess(
            "node", "run", "--transport", "http", "--url", url, "--name", "raid-pc",
            "--max-parallel", "2", "--settings-file", str(tmp_path / "node.json"),
        )  # fmt: skip
        processes.append(node)
        code = node.wait_for(r"claim code: (\w{3}-\w{3})").group(1)

        # Typed carelessly: lower case, no dash.
        alice.goto("/nodes/claim")
        alice.fill("input[name=code]", code.replace("-", "").lower())
        alice.click("text=Find the node")
        preview = alice.locator("#preview")
        expect(preview).to_contain_text("raid-pc")
        expect(preview).to_contain_text("Cores")
        shot(alice, "03-claim-preview")
        alice.fill("#preview input[name=name]", "Alice's raid PC")
        alice.click("text=Claim this node")
        expect(alice.locator("h1")).to_contain_text("Alice's raid PC")
        node.wait_for("claimed by alice", timeout=15)

        alice.goto("/guilds")
        alice.fill("input[name=name]", "Night Watch")
        alice.click("text=Create guild")
        expect(alice.locator(".guild h2")).to_contain_text("Night Watch")

        bob = new_page(url)
        bob.goto("/signup")
        bob.fill("input[name=username]", "bob")
        bob.fill("input[name=password]", "another long password")
        bob.click("text=Create account")
        expect(bob.locator("h1")).to_have_text("My nodes")

        alice.fill(".guild input[name=username]", "bob")
        alice.get_by_role("button", name="Invite", exact=True).click()
        expect(alice.locator(".flash")).to_contain_text("bob is invited")
        bob.goto("/guilds")
        bob.click("text=Join Night Watch")
        expect(bob.locator(".guild")).to_contain_text("alice (owner)")
        shot(bob, "04-guilds")

        alice.goto("/nodes")
        alice.click("text=Alice's raid PC")
        alice.check("input[name=mode][value=guild]")
        alice.select_option("select[name=guild_id]", label="Night Watch")
        alice.click("text=Save access")
        expect(alice.locator(".flash")).to_contain_text("a guild")
        shot(alice, "05-node-page")
        alice.goto("/nodes")
        expect(alice.locator("table.nodes")).to_contain_text("online")
        shot(alice, "06-my-nodes")

        bob.goto("/nodes/available")
        expect(bob.locator("table.nodes")).to_contain_text("Alice's raid PC")
        shot(bob, "07-available")

        bob.goto("/jobs/new")
        bob.fill("textarea[name=config]", "{not json")
        bob.fill("input[name=iterations]", "200")
        bob.click("text=Run simulation")
        expect(bob.locator("#error-config")).to_contain_text("Not valid JSON")
        shot(bob, "08-new-job-error")
        # The toy engine of the tests ships no examples: paste its config.
        bob.fill("textarea[name=config]", json.dumps(TOY_CONFIG))
        bob.fill("input[name=iterations]", "2000")
        bob.click("text=Run simulation")
        expect(bob.locator("h1")).to_contain_text("toy · 2,000 iterations")
        shot(bob, "09-job-running")
        # Live progress: the polling script reloads into the report when the job is done.
        expect(bob.locator("#report")).to_contain_text("DPS ±", timeout=90_000)
        expect(bob.locator("svg.chart").first).to_be_visible()
        shot(bob, "10-job-report")
        bob.goto("/jobs")
        expect(bob.locator("table")).to_contain_text("completed")
        shot(bob, "11-jobs")

        alice.click("text=Log out")
        expect(alice.locator("h1")).to_have_text("Log in")
        assert node.terminate() == 0, node.output
    assert violations == [], "the browser blocked or failed on something"
