"""The report page in a real browser (issue 16): headless Chromium, the Debian package,
driven by Playwright (tests/browser.py says why). The page must load with no console
error and no request but its own file, show the counts it is given, narrow its table by
text and by output field, page with the keyboard, and read without JavaScript. The page
of a real run, made by `batchrun report`: tests/test_report_browser.py. Skipped only when
Chromium is not installed; CI installs it (.ci/run)."""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import report_data
from browser import WHY_MISSING, browser, chromium, counts_on_screen, open_file, screenshot
from playwright.sync_api import BrowserContext, expect

from runner.reportpage import render
from runner.reportpage.table import cell_text

pytestmark = pytest.mark.skipif(chromium() is None, reason=WHY_MISSING)
POINTS = 2000


# One browser and one page file for the module's tests (each opens its own tab and
# watches only that tab): launching Chromium takes longer than most of these tests.
@pytest.fixture(scope="module")
def context(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    with browser(tmp_path_factory.mktemp("chromium") / "profile") as ctx:
        yield ctx


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "report.html"
    render(report_data.report(POINTS), path)
    return path


def embedded_rows(path: Path) -> list[list]:
    html = path.read_text(encoding="utf-8")
    return json.loads(re.search(r'class="rows">(.*?)</script>', html, re.S).group(1))


def row_text(row: list) -> str:
    """What page.js searches in: the id, the inputs and the outputs as the cells read."""
    outputs = [(row[2] or {}).get(name) for name in ("topics", "category", "language", "score")]
    return "\n".join([str(row[0]), *map(cell_text, row[1]), *map(cell_text, outputs)]).lower()


def test_the_report_opens_with_no_error_no_request_and_its_counts(context, report, tmp_path):
    watched = open_file(context, report)
    assert watched.errors() == []
    assert watched.requests == [report.as_uri()]
    screenshot(watched, tmp_path / "report-first-screen.png")
    counts = report_data.counts(POINTS)
    assert counts_on_screen(watched.page, '#overview tr[data-job="tags"]') == {
        attr: value for attr, _, value in counts.labelled()}
    expect(watched.page.locator("section.job svg.chart")).to_have_count(4)
    expect(watched.page.get_by_text("Filtering and paging need JavaScript")).to_be_hidden()


def test_the_harness_does_see_a_request_or_an_error(context, tmp_path):
    """So that the test above can fail: an outside image and a script error are seen."""
    page = tmp_path / "leaky.html"
    page.write_text('<!doctype html><title>x</title><img src="http://192.0.2.1/x.png" alt="">'
                    '<script>undefinedFunction()</script>')
    watched = open_file(context, page, ready=False)
    assert "http://192.0.2.1/x.png" in watched.requests
    assert any("undefinedFunction" in e for e in watched.errors())


def test_typing_in_the_filter_narrows_the_rows(context, report):
    watched = open_file(context, report)
    section = watched.page.locator('section[data-job="tags"]')
    expect(section).to_have_attribute("data-matching", str(POINTS))
    section.locator('input[data-filter="text"]').click()
    watched.page.keyboard.type("chess club")
    expected = [r for r in embedded_rows(report) if all(w in row_text(r) for w in
                                                         ("chess", "club"))]
    assert 0 < len(expected) < 50
    expect(section).to_have_attribute("data-matching", str(len(expected)))
    rows = section.locator("table.results tbody tr")
    expect(rows).to_have_count(len(expected))
    assert rows.locator("th").all_inner_texts() == [str(r[0]) for r in expected]
    expect(section.locator(".status")).to_have_text(
        f"Rows 1–{len(expected)} of {len(expected)} matching the filters, of 2,000.")
    assert watched.errors() == []


def test_an_enum_filter_narrows_the_rows_to_that_value(context, report):
    watched = open_file(context, report)
    section = watched.page.locator('section[data-job="tags"]')
    section.locator('select[data-field="category"]').select_option(json.dumps("Music"))
    music = [r for r in embedded_rows(report) if r[2] and r[2]["category"] == "Music"]
    assert 50 < len(music) < POINTS
    expect(section).to_have_attribute("data-matching", str(len(music)))
    category = section.locator("table.results tbody tr td.out:nth-of-type(7)")
    assert set(category.all_inner_texts()) == {"Music"}
    topics = section.locator('select[data-field="topics"]')
    offered = [json.loads(v) for v in topics.locator("option").evaluate_all(
        "options => options.map(o => o.value).filter(Boolean)")]
    topic = Counter(t for r in music for t in r[2]["topics"] if t in offered).most_common(1)[0][0]
    topics.select_option(json.dumps(topic))
    both = [r for r in music if topic in r[2]["topics"]]
    assert 0 < len(both) < len(music)
    expect(section).to_have_attribute("data-matching", str(len(both)))
    assert watched.errors() == []


def test_the_keyboard_pages_through_the_table(context, report):
    watched = open_file(context, report)
    page = watched.page
    section = page.locator('section[data-job="tags"]')
    rows = embedded_rows(report)
    controls = section.locator("form.controls input, form.controls select")
    assert controls.count() == 7 and all(controls.evaluate_all(
        "cs => cs.map(c => c.labels.length === 1 && c.labels[0].textContent.trim() !== '')"))
    section.locator('input[data-filter="text"]').focus()
    page.keyboard.press("Tab")                          # the controls are in tab order
    assert page.evaluate("document.activeElement.dataset.field") == "topics"
    section.locator('button[data-page="next"]').focus()
    page.keyboard.press("Enter")
    expect(section).to_have_attribute("data-page", "2")
    expect(section.locator(".status")).to_have_text("Rows 51–100 of 2,000.")
    first = section.locator("table.results tbody tr th").first
    expect(first).to_have_text(str(rows[50][0]))
    page.keyboard.press("ArrowRight")
    expect(section).to_have_attribute("data-page", "3")
    page.keyboard.press("End")
    expect(section).to_have_attribute("data-page", str(POINTS // 50))
    expect(section.locator('button[data-page="next"]')).to_be_disabled()
    page.keyboard.press("Home")
    expect(section).to_have_attribute("data-page", "1")
    expect(first).to_have_text(str(rows[0][0]))
    page.keyboard.press(" ")                            # focus moved off the disabled button
    expect(section).to_have_attribute("data-page", "2")
    assert watched.errors() == []


def test_the_summary_reads_without_javascript(context, report):
    watched = open_file(context, report, ready=False, javascript=False)
    page = watched.page
    assert page.get_attribute("html", "data-ready") is None
    counts = report_data.counts(POINTS)
    assert counts_on_screen(page, '#overview tr[data-job="tags"]')["failed"] == counts.failed
    expect(page.locator("svg.chart").first).to_be_visible()
    expect(page.locator("table.results tbody tr")).to_have_count(50)
    expect(page.locator("form.controls")).to_be_hidden()
    expect(page.get_by_text("Filtering and paging need JavaScript")).to_be_visible()
    assert watched.errors() == []
