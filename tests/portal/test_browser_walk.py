"""Issue 12's acceptance walk: a new user's first visit in Chromium, on a desktop
(1280x800) and on a phone (390x844), screenshotting each page to ``tests/artifacts/``.

Every page the browser lands on must be HTML (``Walk`` checks the Content-Type of each
main-frame navigation, whatever caused it: a link, a form, a redirect), and on the phone no
page may be wider than the screen. Steps are functions over a ``Walk``: add new ones (the
job page, the report) next to the others and call them from the test.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pytest
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.plugins import Hooks
from wowlab_core.testing.conformance import TOY_CONFIG
from wowlab_core.testing.plugin import TEST_SETTINGS
from wowlab_engine import plugin as engine_plugin
from wowlab_portal.app import create_app

from .conftest import api_settings
from .server import serve
from .test_browser import (
    ARTIFACTS,
    browser,  # noqa: F401  (a fixture)
)
from .test_report_page import PASSWORD as READER_PASSWORD
from .test_report_page import _finished_numba_job
from .test_web_authorization import PASSWORD as OWNER_PASSWORD
from .test_web_authorization import _give_passwords
from .world import World, build_world

if TYPE_CHECKING:
    from playwright.sync_api import Dialog, Page, Response

pytestmark = pytest.mark.slow

VIEWPORTS = {"desktop": (1280, 800), "phone": (390, 844)}
PASSWORD = "a walk in the park"


@dataclass
class Walk:
    """One browser tab walking the portal, with what every step checks."""

    page: Page
    url: str
    viewport: str
    #: (status, url, content type) of every main-frame navigation answer.
    landed: list[tuple[int, str, str]] = field(default_factory=list)
    #: What the browser blocked (Content-Security-Policy) or scripts that failed.
    problems: list[str] = field(default_factory=list)
    #: The questions of the confirmations shown, and how the next ones are answered.
    dialogs: list[str] = field(default_factory=list)
    accept_dialogs: bool = False
    shots: int = 0

    @property
    def phone(self) -> bool:
        return self.viewport == "phone"

    def watch(self) -> None:
        def on_response(response: Response) -> None:
            request = response.request
            if request.is_navigation_request() and request.frame == self.page.main_frame:
                kind = response.headers.get("content-type", "")
                self.landed.append((response.status, response.url, kind))

        self.page.on("response", on_response)
        self.page.on(
            "console",
            lambda m: self.problems.append(m.text) if "Content Security Policy" in m.text else None,
        )
        self.page.on("pageerror", lambda e: self.problems.append(f"page error: {e}"))

        def on_dialog(dialog: Dialog) -> None:
            self.dialogs.append(dialog.message)
            dialog.accept() if self.accept_dialogs else dialog.dismiss()

        self.page.on("dialog", on_dialog)

    def check_page(self, name: str) -> None:
        """What every page must be: HTML (never raw JSON), within the screen; then a shot."""
        not_html = [
            (status, url, kind)
            for status, url, kind in self.landed
            if not (300 <= status < 400) and not kind.startswith("text/html")
        ]
        assert not_html == [], "the browser landed on something that is not a page"
        assert self.page.locator("body > main").count() == 1  # the site's layout
        width = self.page.evaluate("document.documentElement.scrollWidth")
        assert width <= VIEWPORTS[self.viewport][0], f"{name}: the page is {width}px wide"
        self.shots += 1
        ARTIFACTS.mkdir(exist_ok=True)
        path = ARTIFACTS / f"walk-{self.viewport}-{self.shots:02d}-{name}.png"
        self.page.screenshot(path=str(path), full_page=True)

    def visit(self, path: str, name: str, *, status: int = 200) -> None:
        """Go to ``path`` and check the answer (status, HTML) and the page."""
        response = self.page.goto(path)
        assert response is not None
        assert response.status == status, (path, response.status)
        assert response.headers["content-type"].startswith("text/html"), (path, response.headers)
        self.check_page(name)

    def nav(self, link: str) -> None:
        """Follow a link of the main navigation, as this screen shows it."""
        from playwright.sync_api import expect

        if self.phone:
            menu = self.page.locator("header details.menu")
            menu.locator("summary").click()
            expect(menu.locator("nav")).to_be_visible()
            menu.get_by_role("link", name=link, exact=True).click()
        else:
            self.page.locator("header nav.wide").get_by_role("link", name=link, exact=True).click()
        self.page.wait_for_load_state()

    def log_out(self, page: Page) -> None:
        """Press the header's Log out (in the menu on a phone)."""
        if self.phone:
            page.locator("header details.menu summary").click()
            page.locator("header details.menu form.logout button").click()
        else:
            page.locator("header .wide form.logout button").click()

    def wait_for_dialog(self, count: int) -> None:
        for _ in range(100):  # a loaded machine may take a while to show it
            if len(self.dialogs) >= count:
                return
            self.page.wait_for_timeout(100)
        raise AssertionError(f"no confirmation was asked ({self.dialogs})")


# --- the steps --------------------------------------------------------------------------------


def landing_page(walk: Walk) -> None:
    from playwright.sync_api import expect

    walk.visit("/", "landing")
    page = walk.page
    expect(page.locator("h1")).to_have_text("wowlab")
    expect(page.locator("#add-a-node")).to_contain_text(
        f"wowlab node run --transport http --url {walk.url}"
    )
    # The favicon: linked, and at the root where browsers look for it anyway.
    assert page.locator('link[rel="icon"]').get_attribute("href") == "/favicon.svg"
    for icon in ("/favicon.ico", "/favicon.svg"):
        assert page.request.get(icon).status == 200, icon


def sign_up(walk: Walk, username: str) -> None:
    from playwright.sync_api import expect

    page = walk.page
    page.locator("main").get_by_role("link", name="Sign up").click()
    page.wait_for_load_state()
    walk.check_page("signup")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("text=Create account")
    expect(page.locator("h1")).to_have_text("My nodes")


def empty_my_nodes(walk: Walk) -> None:
    from playwright.sync_api import expect

    command = walk.page.locator("#node-command")
    expect(command).to_contain_text("pip install 'wowlab[node]'")
    expect(command).to_contain_text(f"wowlab node run --transport http --url {walk.url}")
    expect(walk.page.locator("#desktop-app")).to_contain_text("wowlab gui")
    walk.check_page("my-nodes-empty")


def navigation(walk: Walk) -> None:
    """The nav is a row of links on a desktop, a menu button on a phone."""
    from playwright.sync_api import expect

    page = walk.page
    wide, menu = page.locator("header nav.wide"), page.locator("header details.menu")
    if walk.phone:
        expect(wide).to_be_hidden()
        expect(menu.locator("summary")).to_be_visible()
        header_height = page.locator("header").bounding_box()
        assert header_height is not None and header_height["height"] < 80  # one line
        menu.locator("summary").click()
        expect(menu.get_by_role("link", name="Friends", exact=True)).to_be_visible()
        walk.check_page("menu-open")
        menu.locator("summary").click()  # closes again
        expect(menu.locator("nav")).to_be_hidden()
    else:
        expect(wide).to_be_visible()
        expect(menu).to_be_hidden()
    walk.nav("Available nodes")
    expect(page.locator("h1")).to_have_text("Available nodes")
    walk.check_page("available")


def error_pages(walk: Walk, world: World) -> None:
    """Missing pages and other users' things: a page that says so, with a way back."""
    from playwright.sync_api import expect

    page = walk.page
    for path, name in (
        ("/no-such-page", "404-no-such-page"),
        ("/jobs/999999", "404-no-such-job"),
        ("/nodes/abc", "404-nodes-abc"),
        (f"/jobs/{world.job_id}", "404-another-users-job"),
        (f"/nodes/{world.node_id}", "404-another-users-node"),
    ):
        walk.visit(path, name, status=404)
        expect(page.locator("h1")).to_have_text("Page not found")
        expect(page.locator(".ways-back")).to_contain_text("My nodes")
    page.locator(".ways-back").get_by_role("link", name="Back to My nodes").click()
    expect(page.locator("h1")).to_have_text("My nodes")


def form_after_logging_out_elsewhere(walk: Walk, username: str) -> None:
    """A form sent after the session ended in another tab: a 403 page, and a way back in."""
    from playwright.sync_api import expect

    page = walk.page
    walk.visit("/friends", "friends")
    other_tab = page.context.new_page()
    other_tab.goto(walk.url + "/nodes")
    walk.log_out(other_tab)
    expect(other_tab.locator("h1")).to_have_text("Log in")
    other_tab.close()
    page.fill("input[name=username]", "nobody-in-particular")
    page.click("text=Send request")
    expect(page.locator("h1")).to_have_text("This form has expired")
    expect(page.locator("#error")).to_contain_text("Nothing was changed")
    assert walk.landed[-1][0] == 403
    walk.check_page("403-form-expired")
    page.locator(".ways-back").get_by_role("link", name="Log in").click()
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.locator("#login button").click()
    expect(page.locator("h1")).to_have_text("Friends")  # back where the form was


def form_error_keeps_input(walk: Walk) -> None:
    """A mistake the browser cannot catch: the page again, the text kept, the error tied."""
    from playwright.sync_api import expect

    page = walk.page
    walk.nav("New simulation")
    walk.check_page("new-job")
    page.check("input[name=source][value=paste]")
    page.fill("textarea[name=config]", '{"name": "my rogue", oops}')
    page.click("text=Run simulation")
    expect(page.locator("#error-config")).to_contain_text("Not valid JSON")
    config = page.locator("textarea[name=config]")
    expect(config).to_have_value('{"name": "my rogue", oops}')
    expect(config).to_have_attribute("aria-invalid", "true")
    expect(config).to_have_attribute("aria-describedby", "error-config")
    assert page.locator("input[name=source][value=paste]").is_checked()
    assert walk.landed[-1][0] == 422
    walk.check_page("new-job-error")
    # Fixed: it runs (no node yet, so it waits), and the jobs list shows it.
    page.fill("textarea[name=config]", json.dumps(TOY_CONFIG))
    page.fill("input[name=iterations]", "1000")
    page.click("text=Run simulation")
    page.wait_for_url(re.compile(r"/jobs/\d+$"))  # the job's page (its title names the sim)
    expect(page.locator("h1")).to_contain_text("Job")
    walk.check_page("job-waiting")


def local_times(walk: Walk) -> None:
    """Times are sent in UTC and shown in the reader's zone (the context's: New York)."""
    from playwright.sync_api import expect

    walk.visit("/jobs", "jobs")
    when = walk.page.locator("table time[datetime]").first
    expect(when).to_have_attribute("data-localized", "1")
    expect(when).to_have_attribute("title", re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d UTC$"))
    shown = when.inner_text()
    assert "UTC" not in shown and re.search(r"EST|EDT|GMT-[45]", shown), shown


def confirmations(walk: Walk, friend: str) -> None:
    """Destructive buttons ask first; Cancel changes nothing, OK does it."""
    from playwright.sync_api import expect

    page = walk.page
    walk.nav("Guilds")
    page.fill("#found-guild input[name=name]", "Walkers")
    page.click("text=Create guild")
    expect(page.locator(".guild h2")).to_contain_text("Walkers")
    walk.check_page("guilds")
    walk.accept_dialogs = False
    page.locator(".guild").get_by_role("button", name="Leave").click()
    walk.wait_for_dialog(1)
    assert walk.dialogs[-1].startswith("Leave Walkers?")
    expect(page.locator(".guild h2")).to_contain_text("Walkers")  # Cancel: still a member

    walk.visit("/account", "account")
    page.get_by_role("button", name="Log out everywhere").click()
    walk.wait_for_dialog(2)
    assert walk.dialogs[-1] == "Log out of every browser, this one too?"
    expect(page.locator("h1")).to_have_text("Account")  # Cancel: still logged in

    walk.accept_dialogs = True
    walk.nav("Guilds")
    page.locator(".guild").get_by_role("button", name="Leave").click()
    walk.wait_for_dialog(3)
    expect(page.locator(".flash")).to_contain_text("You left the guild")
    walk.check_page("guild-left")

    walk.accept_dialogs = False
    walk.nav("Friends")
    page.fill("#add-friend input[name=username]", friend)
    page.click("text=Send request")
    row = page.locator("#friends tr", has_text=friend)
    row.get_by_role("button", name="Withdraw").click()
    walk.wait_for_dialog(4)
    assert walk.dialogs[-1] == f"Withdraw your friend request to {friend}?"
    expect(row).to_be_visible()  # Cancel: the request stays
    walk.check_page("friends-request")


def owners_pages(walk: Walk, world: World) -> None:
    """A node owner's pages with data in them: the node table, the node's settings (a
    mistake only the server sees), the jobs list and a job."""
    from playwright.sync_api import expect

    page = walk.page
    walk.log_out(page)
    expect(page.locator("h1")).to_have_text("Log in")
    page.fill("input[name=username]", world.accounts["alice"].user.username)
    page.fill("input[name=password]", OWNER_PASSWORD)
    page.locator("#login button").click()
    expect(page.locator("h1")).to_have_text("My nodes")
    expect(page.locator("table.nodes")).to_be_visible()
    walk.check_page("owner-nodes")
    page.locator("table.nodes a").first.click()
    labels = ", ".join(f"label{i}" for i in range(40))  # more than a node may have
    page.fill("input[name=labels]", labels)
    page.click("text=Save")
    field = page.locator("input[name=labels]")
    expect(field).to_have_value(labels)
    expect(field).to_have_attribute("aria-invalid", "true")
    expect(page.locator("#error-labels")).to_have_text(
        "At most 32 labels, separated by commas (this is 40)."
    )
    assert walk.landed[-1][0] == 422
    expect(page.locator("#access fieldset legend")).to_have_text(
        "Who may run simulations on this node"
    )
    walk.check_page("owner-node-error")
    walk.visit("/jobs", "owner-jobs")
    walk.visit(f"/jobs/{world.job_id}", "owner-job")


def report_pages(walk: Walk, reader: str, job_id: int) -> None:
    """A finished simulation's report (distribution, percentiles, charts, detail tables), its
    standalone HTML file, and its public link opened as the page anyone would see."""
    from playwright.sync_api import expect

    page = walk.page
    walk.log_out(page)
    expect(page.locator("h1")).to_have_text("Log in")
    page.fill("input[name=username]", reader)
    page.fill("input[name=password]", READER_PASSWORD)
    page.locator("#login button").click()
    expect(page.locator("h1")).to_have_text("My nodes")
    walk.visit(f"/jobs/{job_id}", "report")
    expect(page.locator("h1#title")).to_contain_text("fire_mage · numba · 20 iterations")
    expect(page.locator("#report")).to_contain_text("DPS ±")
    for key in ("p1", "p5", "q1", "median", "q3", "p95", "p99"):
        expect(page.locator(f"#dps-{key}")).not_to_be_empty()
    expect(page.locator("svg.chart").first).to_be_visible()
    with page.expect_download() as download:
        page.get_by_role("link", name="Download HTML report").click()
    assert download.value.suggested_filename == f"wowlab-job-{job_id}.html"
    page.get_by_role("button", name="Make a public link").click()
    link = page.locator("#share-url")
    expect(link).to_be_visible()
    walk.check_page("report-link")
    shared = link.input_value()
    assert re.search(r"/share/[\w-]{40,}$", shared), shared
    walk.visit(shared, "report-shared")
    expect(page.locator("#report")).to_contain_text("DPS ±")
    assert reader not in page.locator("main").inner_text()  # nobody's names on it


# --- the walk ---------------------------------------------------------------------------------


@dataclass
class Served:
    url: str
    world: World
    #: A user with a finished fire_mage job (a real numba report), and its id.
    reader: str
    report_job: int


@pytest.fixture
def served(
    sqlite_db: Engine, wowlab_hooks: Hooks, register_plugin: Callable[[object], object]
) -> Iterator[Served]:
    coordinator = Coordinator(sqlite_db, hooks=wowlab_hooks, settings=TEST_SETTINGS)
    with serve(create_app(api_settings(), coordinator=coordinator)) as url:
        world = build_world(sqlite_db, coordinator)  # other users, their node and jobs
        _give_passwords(sqlite_db, world)  # OWNER_PASSWORD
        # The numba engine only to make this report: the walk's own jobs use the toy engine,
        # the default while it is the only one.
        register_plugin(engine_plugin)
        reader, job_id = _finished_numba_job(sqlite_db, coordinator, "fire_mage")
        wowlab_hooks.pm.unregister(engine_plugin)
        yield Served(url, world, reader, job_id)


@pytest.mark.parametrize("viewport", list(VIEWPORTS))
def test_a_first_visit_walk(
    served: Served,
    browser: object,  # noqa: F811
    viewport: str,
) -> None:
    from playwright.sync_api import Browser

    assert isinstance(browser, Browser)
    url, world = served.url, served.world
    width, height = VIEWPORTS[viewport]
    context = browser.new_context(
        base_url=url,
        viewport={"width": width, "height": height},
        is_mobile=viewport == "phone",
        has_touch=viewport == "phone",
        timezone_id="America/New_York",
    )
    try:
        walk = Walk(context.new_page(), url, viewport)
        walk.watch()
        username = f"walker-{viewport}"
        landing_page(walk)
        sign_up(walk, username)
        empty_my_nodes(walk)
        navigation(walk)
        error_pages(walk, world)
        form_error_keeps_input(walk)
        form_after_logging_out_elsewhere(walk, username)
        local_times(walk)
        confirmations(walk, world.accounts["alice"].user.username)
        owners_pages(walk, world)
        report_pages(walk, served.reader, served.report_job)
        assert walk.problems == [], "the browser blocked or failed on something"
        assert len(walk.landed) >= 15 and walk.shots >= 12
    finally:
        context.close()
