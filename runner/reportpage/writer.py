"""`render(data, out)`: the report as one self-contained HTML file, written as it is made.

The template streams (`Template.generate`): the overview and the costs go out first, then
each job's section is computed from its points only when the template reaches it, so at
most one job's sample is in memory. The page has no external reference: its CSS and
script are inline, its charts are inline SVG, and a Content-Security-Policy with the
hashes of exactly that CSS and script forbids the browser from fetching anything else or
running any other script — a value in a point that looks like HTML stays text.
"""

from __future__ import annotations

import base64
import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from importlib import resources
from pathlib import Path
from typing import IO, Any

import jinja2

from ..views import money  # dollars exactly as `batchrun costs` prints them
from . import charts
from .contract import BatchReport, ReportData
from .spend import Spending, spending
from .table import TableLimits
from .views import JobView, anchor_for, job_view

BATCHES_CHARTED = 60     # the per-batch chart shows the most recent ones; the table lists all


@dataclass
class PageInfo:
    """What was written: the file's size, and per job (points shown, points seen)."""

    bytes: int = 0
    jobs: dict[str, tuple[int, int]] = field(default_factory=dict)


def render(data: ReportData, out: str | os.PathLike[str] | IO[str],
           limits: TableLimits | None = None) -> PageInfo:
    """Write the report page to a path (atomically: temp file, then rename) or to an open
    text file. Consumes each job's points once."""
    limits = limits or TableLimits()
    info = PageInfo()
    if not isinstance(out, (str, os.PathLike)):
        _write(data, out, limits, info)
        return info
    path = Path(out)
    # A temp file beside the target (created with the user's umask, unlike mkstemp's 0600),
    # renamed over it when complete: a reader never sees half a page.
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "w", encoding="utf-8", newline="\n") as fh:
            _write(data, fh, limits, info)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return info


def _write(data: ReportData, fh: IO[str], limits: TableLimits, info: PageInfo) -> None:
    css, script = _asset("page.css"), _asset("page.js")
    template = _environment().get_template("page.html.j2")
    context = {
        "data": data, "css": css, "script": script, "csp": _csp(css, script),
        "limits": limits, "money": money, "spend": spending(data.batches),
        "anchors": {job.name: anchor_for(job.name, i) for i, job in enumerate(data.jobs)},
        "views": _views(data, limits, info), "charts": _cost_charts,
    }
    for chunk in template.generate(**context):
        info.bytes += len(chunk.encode("utf-8"))
        fh.write(chunk)


def _views(data: ReportData, limits: TableLimits, info: PageInfo) -> Iterator[JobView]:
    for index, job in enumerate(data.jobs):
        view = job_view(job, index, limits, len(data.jobs))
        info.jobs[job.name] = (view.shown, view.stats.points)
        yield view


def _asset(name: str) -> str:
    return (resources.files("runner") / "data" / "report" / name).read_text(encoding="utf-8")


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("runner", "data/report"), autoescape=True,
        undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["num"] = lambda n: f"{n:,}"
    env.filters["when"] = when
    return env


def _csp(css: str, script: str) -> str:
    """Only this page's own style and script; nothing fetched, no form sent anywhere."""
    def digest(text: str) -> str:
        return "'sha256-" + base64.b64encode(hashlib.sha256(text.encode()).digest()).decode() + "'"
    return (f"default-src 'none'; script-src {digest(script)}; style-src {digest(css)}; "
            "img-src data:; base-uri 'none'; form-action 'none'")


def when(moment: datetime | None) -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else "—"


def _cost_charts(spend: Spending, batches: list[BatchReport]) -> dict[str, Any]:
    """The three cost charts: per day (batch vs standard price, and tokens), per batch."""
    days = list(spend.by_day)
    per_day = spend.by_day.values()
    recent = sorted(batches, key=lambda b: (b.created_at is None, b.created_at or 0))
    recent = recent[-BATCHES_CHARTED:]
    return {
        "cost_by_day": charts.columns("cost-by-day", days, [
            charts.Series("batch price", "s0", [float(s.cost_usd) for s in per_day]),
            charts.Series("standard price", "s1",
                          [float(s.cost_standard_usd) for s in per_day])],
            fmt=lambda v: f"${v:,.4f}" if v < 1 else f"${v:,.2f}"),
        "tokens_by_day": charts.columns("tokens-by-day", days, [
            charts.Series("input (uncached)", "s0", [s.uncached_input for s in per_day]),
            charts.Series("cached input", "s2", [s.tokens["cached_input"] for s in per_day]),
            charts.Series("output", "s1", [s.tokens["output"] for s in per_day])],
            fmt=lambda v: f"{v:,.0f}", stacked=True),
        "cost_by_batch": charts.bars("cost-by-batch", [
            charts.Bar(f"{b.job} {b.batch_id}", float(b.cost_usd or 0), money(b.cost_usd))
            for b in recent]),
        "batches_charted": len(recent),
    }
