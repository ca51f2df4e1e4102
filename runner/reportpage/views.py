"""What the template shows for one job, computed in one pass over its points.

`job_view` consumes the job's points exactly once: every point goes into the
distributions, a bounded sample of them into the table. Failures and render errors are
streamed too: grouped by reason over all of them, listed one by one up to a cap.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import charts
from .contract import FailedRequest, JobReport, RenderError
from .stats import (
    BOOLEAN,
    ENUM,
    ITEMS,
    NUMBER,
    TEXT,
    FieldStats,
    JobStats,
    key_json,
    key_label,
    output_fields,
    value_key,
)
from .table import RowEncoder, Sample, TableLimits, cell_text, json_chunks

TOP_VALUES = 20          # bars per chart of an array or free-text field
FILTER_OPTIONS = 50      # choices offered by the filter of an array or free-text field
LISTED = 1_000           # failed requests, and unrenderable point ids, listed per job


@dataclass
class Chart:
    field: str
    caption_id: str                      # the figcaption's id, which the SVG is labelled by
    caption: str
    svg: Any
    rows: list[tuple[str, str]]          # (label, value) — the chart's numbers as a table
    note: str = ""


@dataclass
class JobView:
    job: JobReport
    anchor: str
    stats: JobStats
    sample: Sample
    rows: list[bytes]
    first_page: list[tuple[str, list[str], list[str]]]
    output_columns: list[str]
    charts: list[Chart]
    notes: list[str]                     # fields that have no chart, and why
    meta: dict[str, Any]
    failure_groups: list[tuple[str, int, int]] = field(default_factory=list)
    failures: list[FailedRequest] = field(default_factory=list)
    failure_total: int = 0
    render_groups: list[tuple[str, str, int, list[Any]]] = field(default_factory=list)
    render_total: int = 0

    def rows_json(self) -> Iterator[str]:
        return json_chunks(self.rows)

    @property
    def shown(self) -> int:
        return len(self.rows)


def anchor_for(name: str, index: int) -> str:
    return f"job-{index}-" + re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-").lower()


def job_view(job: JobReport, index: int, limits: TableLimits, jobs: int) -> JobView:
    fields = output_fields(job.output_schema)
    stats = JobStats(fields)
    sample = Sample(limits.per_job(jobs))
    encoder = RowEncoder(job.input_fields, limits)
    for point_id, inputs, result in job.points:
        stats.add(result)
        place = sample.admits(point_id)
        if place is not None:
            sample.keep(place, encoder.encode(point_id, inputs, result))
    rows = sample.rows()
    columns = [f.name for f in fields] or [job.output_key]
    view = JobView(job=job, anchor=anchor_for(job.name, index), stats=stats, sample=sample,
                   rows=rows, first_page=[], output_columns=columns, charts=[], notes=[],
                   meta={})
    view.first_page = [_cells(json.loads(row), fields) for row in rows[: limits.page]]
    for stats_of in stats.by_field.values():
        chart = _chart(view.anchor, stats_of)
        if isinstance(chart, Chart):
            view.charts.append(chart)
        else:
            view.notes.append(chart)
    view.meta = {"inputs": list(job.input_fields), "outputs": columns,
                 "fielded": bool(fields), "page": limits.page, "total": stats.points,
                 "filters": [_filter(s) for s in stats.by_field.values()]}
    _failures(view, job.failures)
    _render_errors(view, job.render_errors)
    return view


def _cells(row: list[Any], fields: list) -> tuple[str, list[str], list[str]]:
    point_id, inputs, result = row
    if fields:
        outputs = [cell_text(result.get(f.name)) if isinstance(result, dict) else "—"
                   for f in fields]
    else:
        outputs = [cell_text(result)]
    return cell_text(point_id), [cell_text(v) for v in inputs], outputs


def _percent(count: int, of: int) -> str:
    return f"{count:,} ({100 * count / of:.1f}%)" if of else f"{count:,}"


def _repetitive(s: FieldStats) -> bool:
    """A free-text field worth charting: its most frequent values cover half the answers
    (a `language`, not a `summary`)."""
    return sum(n for _, n in s.values.top(TOP_VALUES)) >= s.values.total / 2


def _chart(anchor: str, s: FieldStats) -> Chart | str:
    name, kind = s.output_field.name, s.output_field.kind
    caption_id = f"{anchor}-chart-{re.sub(r'[^A-Za-z0-9_-]+', '-', name)}"
    if not s.answered:
        return f"{name}: no answers yet"
    if kind == NUMBER and s.numbers is not None:
        return _histogram(caption_id, name, s)
    if kind not in (ENUM, BOOLEAN, ITEMS, TEXT):
        return f"{name}: objects or mixed values, not charted"
    counts = s.values
    if kind in (ENUM, BOOLEAN) or (kind == ITEMS and s.output_field.values):
        keys = [value_key(v) for v in s.output_field.values]
        extra = [k for k, _ in counts.top(TOP_VALUES) if k not in set(keys)]
        pairs = [(k, counts.counts.get(k, 0)) for k in keys + extra]
    else:
        pairs = counts.top(TOP_VALUES)
        if kind == TEXT and not _repetitive(s):
            return (f"{name}: free text, too varied to chart (the {len(pairs)} most frequent "
                    "values cover less than half of the answers)")
    of = s.answered - s.nulls
    rows = [charts.Bar(key_label(k), n, _percent(n, of)) for k, n in pairs]
    if s.nulls:
        rows.append(charts.Bar("(null)", s.nulls, _percent(s.nulls, s.answered)))
    listed = sum(n for _, n in pairs)
    notes = []
    if kind == ITEMS:
        notes.append(f"items counted in {of:,} arrays; a percentage is items per answer")
    if counts.total > listed and kind not in (ENUM, BOOLEAN):
        notes.append(f"{counts.total - listed:,} more values not shown "
                     f"(the {len(pairs)} most frequent are)")
    if counts.error:
        notes.append(f"counts are approximate: each may be low by up to {counts.error:,} "
                     "(too many distinct values to count exactly)")
    what = "items" if kind == ITEMS else "values"
    return Chart(name, caption_id, f"{name}: {what} over {s.answered:,} answers", charts.bars(
        caption_id, rows), [(r.label, r.text) for r in rows], "; ".join(notes))


def _histogram(caption_id: str, name: str, s: FieldStats) -> Chart:
    numbers = s.numbers
    assert numbers is not None
    bins = numbers.display_bins()
    whole = numbers.exact is not None and all(float(lo).is_integer() for lo, _, _ in bins)
    labels = [_bin_label(lo, hi, whole) for lo, hi, _ in bins]
    svg = charts.columns(caption_id, labels, [charts.Series(name, "s0", [n for *_, n in bins])],
                         fmt=lambda v: f"{v:,.0f}")
    mean = numbers.mean
    note = (f"{numbers.count:,} numbers, min {_num(numbers.low)}, max {_num(numbers.high)}, "
            f"mean {_num(mean) if mean is not None else '—'}")
    if s.nulls:
        note += f"; {s.nulls:,} null"
    return Chart(name, caption_id, f"{name}: histogram over {s.answered:,} answers", svg,
                 [(label, f"{n:,}") for label, (*_, n) in zip(labels, bins, strict=True)],
                 note)


def _bin_label(low: float, high: float, whole: bool) -> str:
    if low == high:
        return _num(low)
    if whole:
        return _num(low) if high - low == 1 else f"{_num(low)}–{_num(high - 1)}"
    return f"{_num(low)}–{_num(high)}"


def _num(value: float) -> str:
    return f"{value:,.0f}" if float(value).is_integer() else f"{value:,.4g}"


def _filter(s: FieldStats) -> dict[str, Any]:
    """What the page's filter for one output field offers (options as JSON texts)."""
    f = s.output_field
    if f.kind == NUMBER:
        return {"field": f.name, "kind": "range"}
    if f.kind in (ENUM, BOOLEAN) or (f.kind == ITEMS and f.values):
        keys = [value_key(v) for v in f.values]
    elif f.kind == ITEMS or (f.kind == TEXT and _repetitive(s)):
        keys = [k for k, _ in s.values.top(FILTER_OPTIONS)]
    else:
        return {"field": f.name, "kind": "none"}
    return {"field": f.name, "kind": "items" if f.kind == ITEMS else "equals",
            "options": [[key_json(k), key_label(k)] for k in keys]}


def _failures(view: JobView, failures: Iterable[FailedRequest]) -> None:
    by_reason: Counter[str] = Counter()
    points: Counter[str] = Counter()
    for failure in failures:
        view.failure_total += 1
        by_reason[failure.reason] += 1
        points[failure.reason] += failure.point_count
        if len(view.failures) < LISTED:
            view.failures.append(failure)
    view.failure_groups = [(reason, n, points[reason]) for reason, n in by_reason.most_common()]


def _render_errors(view: JobView, errors: Iterable[RenderError]) -> None:
    groups: dict[tuple[str, str], list[Any]] = {}
    counts: Counter[tuple[str, str]] = Counter()
    listed = 0
    for error in errors:
        view.render_total += error.point_count
        key = (error.reason, error.where)
        counts[key] += error.point_count
        ids = groups.setdefault(key, [])
        for point_id in error.point_ids[: max(LISTED - listed, 0)]:
            ids.append(point_id)
            listed += 1
    view.render_groups = [(reason, where, n, groups[(reason, where)])
                          for (reason, where), n in counts.most_common()]
