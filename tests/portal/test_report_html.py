"""The standalone HTML report of a real job, from the job page's route, opened offline in
Chromium: it shows the numbers of the JSON report, and asks for nothing over the network."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.engine import Engine

from wowlab_core.coordinator import Coordinator
from wowlab_core.histogram import MIN_DISPLAY_BINS
from wowlab_core.report_html import DISTRIBUTION
from wowlab_core.report_view import row_label, split_abilities
from wowlab_engine import plugin as engine_plugin
from wowlab_portal.app import create_app

from .conftest import api_settings
from .test_browser import ARTIFACTS, browser  # noqa: F401  (browser: a fixture)
from .test_report_page import PASSWORD, _finished_numba_job

pytestmark = pytest.mark.slow


def shown(text: str | None) -> float:
    """A number as the page shows it (thousands separated)."""
    assert text is not None
    return float(text.strip().replace(",", ""))


def test_the_html_report_opens_offline_with_the_numbers_of_the_json(
    db: Engine,
    api_coordinator: Coordinator,
    register_plugin: Callable[[object], object],
    browser: Any,  # noqa: F811
    tmp_path: Path,
) -> None:
    register_plugin(engine_plugin)
    with TestClient(create_app(api_settings(), coordinator=api_coordinator)) as client:
        username, job_id = _finished_numba_job(db, api_coordinator, "fire_mage")
        reply = client.post("/api/v1/auth/login", json={"username": username, "password": PASSWORD})
        assert reply.status_code == 200, reply.text
        report: dict[str, Any] = client.get(f"/api/v1/jobs/{job_id}/report").json()
        page_html = client.get(f"/jobs/{job_id}").text
        assert f'href="/jobs/{job_id}/report.html"' in page_html  # the job page links it
        answer = client.get(f"/jobs/{job_id}/report.html")
        assert answer.status_code == 200
        assert answer.headers["content-type"] == "text/html; charset=utf-8"
        assert answer.headers["content-disposition"] == (
            f'attachment; filename="wowlab-job-{job_id}.html"'
        )
        client.cookies.clear()  # someone else (here: nobody) gets no report
        assert client.get(f"/jobs/{job_id}/report.html", follow_redirects=False).status_code in (
            303,
            401,
            404,
        )
    path = tmp_path / f"wowlab-job-{job_id}.html"
    path.write_bytes(answer.content)

    context = browser.new_context(offline=True, viewport={"width": 1280, "height": 800})
    asked: list[str] = []
    context.on("request", lambda request: asked.append(request.url))
    page = context.new_page()
    page.goto(path.as_uri())
    try:
        assert asked == [path.as_uri()]  # nothing but the file itself
        dps = report["dps"]
        assert report["report_version"] == 2
        assert shown(page.text_content("#dps-mean")) == dps["mean"]
        assert shown(page.text_content("#dps-error95")) == dps["error95"]
        assert shown(page.text_content("#dps-error_pct")) == dps["error_pct"]
        assert shown(page.text_content("#iterations")) == report["iterations"] == 20
        for key, _ in DISTRIBUTION:
            assert shown(page.text_content(f"#dps-{key}")) == dps[key], key
        damage, utility = split_abilities(report["abilities"])
        rows = page.locator("#abilities tbody tr")
        assert rows.count() == len(damage)
        for i, ability in enumerate(damage):
            cells = rows.nth(i).locator("td")
            assert cells.nth(0).text_content() == row_label(ability, "ability")
            assert shown(cells.nth(1).text_content()) == ability["dps"]
            assert shown(cells.nth(3).text_content()) == ability["executes"]
        names = page.locator("#utility tbody tr td:first-child").all_text_contents()
        assert names == [row_label(a, "ability") for a in utility] == ["Combustion", "Time Warp"]
        counts = page.locator("#histogram tbody tr td:nth-child(3)").all_text_contents()
        assert [int(shown(c)) for c in counts] == [b["count"] for b in report["histogram"]]
        assert sum(b["count"] for b in report["histogram"]) == 20
        # Bins are widened while one is empty, down to MIN_DISPLAY_BINS: a gap left at
        # that width is in the data (20 iterations of some seeds have one).
        assert len(report["histogram"]) <= MIN_DISPLAY_BINS or all(
            b["count"] > 0 for b in report["histogram"]
        )
        for key, value in report["fight"].items():
            if isinstance(value, (int, float)):
                assert shown(page.text_content(f"#fight-{key}")) == value, key
        # The charts are drawn: histogram, abilities, DPS over time, resources, auras.
        assert page.locator("svg.chart").count() >= 5
        assert page.locator("svg.chart rect.bar").count() >= len(report["histogram"])
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "report-html-offline.png"), full_page=True)
        # Phone width: still one readable column; the wide table scrolls in its box.
        page.set_viewport_size({"width": 390, "height": 844})
        width = page.evaluate("document.documentElement.scrollWidth")
        assert width <= 390
    finally:
        context.close()
