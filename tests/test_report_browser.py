"""`batchrun report` opened in a real browser (issue 16): a run over real HTTP with failed
requests, reported through the CLI, opens in headless Chromium with no console error and
no request but its own file, shows the counts `plan --json` prints, and its filters
narrow the table; the demo's report too. Each test saves a 1280×800 screenshot of the
first screen in its temp folder.

`python tests/test_report_browser.py` remakes docs/report-demo.png, the README's picture:
the demo run in a fresh folder, its report's first screen.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from browser import WHY_MISSING, browser, chromium, counts_on_screen, open_file, screenshot
from playwright.sync_api import expect

from runner.emulator import Faults
from runner.reportpage import JobCounts

pytestmark = pytest.mark.skipif(chromium() is None, reason=WHY_MISSING)
ROOT = Path(__file__).resolve().parent.parent
README_PICTURE = ROOT / "docs" / "report-demo.png"


def plan_counts(plan_entry: dict) -> dict[str, int]:
    return {attr: value for attr, _, value in JobCounts.from_plan_json(plan_entry).labelled()}


def test_a_run_with_failures_reports_plans_counts_and_filters_in_chromium(http_project,
                                                                          tmp_path):
    http_project.seed(40)
    http_project.edit("jobs/tags.yaml", "max_attempts: 3", "max_attempts: 1")
    http_project.emulator.emulator.faults = Faults(seed=4, request_failure_rate=0.2)
    http_project.run("apply", expect=3)
    plan = http_project.run_json("plan")["jobs"]["tags"]
    assert plan["failed"] > 0 and plan["up_to_date"] > 0
    failed = http_project.run_json("show", "tags", "--failed", "--limit", "100")["failures"]
    answers = {p["id"]: p for p in http_project.run_json("show", "tags", "--limit", "100")
               ["points"]}
    path = Path(http_project.run_json("report", "-o", str(tmp_path / "report.html"))["path"])

    with browser(tmp_path / "profile") as context:
        watched = open_file(context, path)
        page = watched.page
        screenshot(watched, tmp_path / "report-first-screen.png")
        assert watched.errors() == []
        assert watched.requests == [path.as_uri()]
        for scope in ('#overview tr[data-job="tags"]', 'section[data-job="tags"] table.counts'):
            assert counts_on_screen(page, scope) == plan_counts(plan)
        failures = page.locator("section.job table.failures").last
        for failure in failed:
            expect(failures).to_contain_text(failure["key"][:12])
        batch_ids = [b["batch_id"] for b in http_project.manifest()["jobs"]["tags"]["batches"]]
        assert page.locator("#batches tbody th").all_text_contents() == batch_ids
        assert batch_ids

        section = page.locator('section[data-job="tags"]')
        rows = section.locator("table.results tbody tr")
        expect(section).to_have_attribute("data-matching", "40")
        title = answers[1]["inputs"]["title"]                # "2017 Champions Showdown: Day 3"
        section.locator('input[data-filter="text"]').click()
        page.keyboard.type("champions showdown")
        expect(section).to_have_attribute("data-matching", str(sum(
            "champions showdown" in json.dumps(p, ensure_ascii=False).lower()
            for p in answers.values())))
        assert 0 < rows.count() < 40
        assert rows.locator("th").all_inner_texts()[0] == "1" and title in rows.first.inner_text()
        assert all("champions showdown" in text.lower() for text in rows.all_inner_texts())

        section.locator('input[data-filter="text"]').fill("")
        category = answers[1]["result"]["category"]
        section.locator('select[data-field="category"]').select_option(json.dumps(category))
        same = [p for p in answers.values() if (p["result"] or {}).get("category") == category]
        expect(section).to_have_attribute("data-matching", str(len(same)))
        assert 0 < len(same) < 40
        assert sorted(map(int, rows.locator("th").all_inner_texts())) == \
            sorted(p["id"] for p in same)
        assert watched.errors() == []


def demo_report_picture(folder: Path, picture: Path) -> tuple[Path, dict[str, int]]:
    """Run `batchrun demo` in `folder` as `make demo` does (a process of its own), open the
    report whose path it printed last, check it opens clean and save its first screen.
    Returns the page and the counts it shows for the demo's job."""
    done = subprocess.run([sys.executable, "-m", "runner.cli", "-C", str(folder), "demo",
                           "--speed", "instant", "--examples", "1", "--no-progress"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    last = done.stdout.splitlines()[-1]
    assert last.startswith("Report: "), done.stdout
    page = Path(last.removeprefix("Report: ").split(" (")[0])
    with browser(folder / ".profile") as context:
        watched = open_file(context, page)
        assert watched.errors() == [] and watched.requests == [page.as_uri()]
        screenshot(watched, picture)
        return page, counts_on_screen(watched.page, '#overview tr[data-job="tags"]')


@pytest.mark.slow   # the demo in a process of its own; test_report.py checks it in-process
def test_the_demo_ends_by_writing_its_report_and_printing_where(tmp_path):
    folder = tmp_path / "demo"
    folder.mkdir()
    page, counts = demo_report_picture(folder, tmp_path / "report-first-screen.png")
    assert page == folder / "report.html"
    plan = subprocess.run([sys.executable, "-m", "runner.cli", "-C", str(folder), "plan",
                           "--json"], capture_output=True, text=True, timeout=300)
    assert counts == plan_counts(json.loads(plan.stdout)["jobs"]["tags"])
    assert counts["matched"] == counts["up_to_date"] == 240


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as scratch:
        folder = Path(scratch) / "demo"
        folder.mkdir()
        demo_report_picture(folder, README_PICTURE)
    print(f"wrote {README_PICTURE.relative_to(ROOT)} "
          f"({README_PICTURE.stat().st_size // 1024} KB)")
