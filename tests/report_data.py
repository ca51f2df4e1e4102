"""Report-page data shaped like a real run over the sample videos, for the tests and for
bench/report_page.py: the 300 real videos (title, channel, category, tags, description)
replicated to any number of points, copy k with its own title and description, and a
deterministic answer per point, so a test can compute what the page must show.

Point i+1 (i from 0) has no answer when i % 25 == 24; of those, a third failed, a third
could not be rendered, a third are in flight. The points are a generator: like a Qdrant
scroll, nothing holds the collection.
"""

from __future__ import annotations

import gzip
import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from runner.reportpage import (
    BatchReport,
    FailedRequest,
    JobCounts,
    JobReport,
    RenderError,
    ReportData,
    Tokens,
)

SAMPLE = Path(__file__).resolve().parent.parent / "runner" / "data" / "videos.sample.jsonl.gz"
FIELDS = ["title", "channel_title", "category", "tags", "description"]
CATEGORIES = ["Music", "Gaming", "News", "Education", "Entertainment", "Sports", "Comedy",
              "Science", "Other"]
SCHEMA = {"type": "object", "additionalProperties": False,
          "required": ["topics", "category", "language", "score"],
          "properties": {"topics": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
                         "category": {"type": "string", "enum": CATEGORIES},
                         "language": {"type": "string"},
                         "score": {"type": "integer", "minimum": 1, "maximum": 5}}}
FAILURE_REASONS = ["HTTP 500: The server had an error while processing your request.",
                   "invalid output: Expecting value: line 1 column 1 (char 0)",
                   "truncated: finish_reason length (max_tokens 200)"]
RENDER_REASON, RENDER_WHERE = "'description' is undefined", "prompts/tags.user.j2:4"
START = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


@cache
def sample_videos() -> tuple[dict, ...]:
    with gzip.open(SAMPLE, "rt", encoding="utf-8") as fh:
        return tuple(json.loads(line) for line in fh)


def video(i: int) -> dict:
    """Point i+1's payload: sample video i % 300, copy k varied like bench/_common.videos."""
    sample = sample_videos()
    base, copy = sample[i % len(sample)], i // len(sample)
    payload = {name: base.get(name) for name in FIELDS}
    if copy:
        payload["title"] = f"{base['title']} (part {copy + 1})"
        payload["description"] = f"Part {copy + 1} of the series. {base.get('description') or ''}"
    return payload


def state(i: int) -> str:
    """answered | failed | unrenderable | in_flight"""
    if i % 25 != 24:
        return "answered"
    return ("failed", "unrenderable", "in_flight")[(i // 25) % 3]


def category_of(video_category: str | None) -> str:
    for name in CATEGORIES:
        if video_category and video_category.startswith(name):
            return name
    return {"Film & Animation": "Entertainment", "Howto & Style": "Education",
            "News & Politics": "News"}.get(video_category or "", "Other")


def answer(i: int, payload: dict) -> dict | None:
    if state(i) != "answered":
        return None
    topics = [tag.lower() for tag in (payload.get("tags") or [])[:4]]
    return {"topics": topics or [payload["title"].split()[0].lower()],
            "category": category_of(payload.get("category")),
            "language": "fr" if i % 300 >= 240 else "en", "score": 1 + (i * 7) % 5}


def points(n: int) -> Iterator[tuple[int, dict, Any]]:
    for i in range(n):
        payload = video(i)
        yield i + 1, payload, answer(i, payload)


def request_key(i: int) -> str:
    return hashlib.sha256(f"request {i}".encode()).hexdigest()


def failures(n: int) -> Iterator[FailedRequest]:
    for i in range(n):
        if state(i) == "failed":
            yield FailedRequest(request_key(i), FAILURE_REASONS[(i // 75) % 3], 3,
                                point_ids=[i + 1])


def render_errors(n: int) -> Iterator[RenderError]:
    for i in range(n):
        if state(i) == "unrenderable":
            yield RenderError(RENDER_REASON, RENDER_WHERE, point_ids=[i + 1])


def counts(n: int) -> JobCounts:
    by_state = {"answered": 0, "failed": 0, "unrenderable": 0, "in_flight": 0}
    for i in range(n):
        by_state[state(i)] += 1
    return JobCounts(matched=n, up_to_date=by_state["answered"], failed=by_state["failed"],
                     in_flight=by_state["in_flight"], unrenderable=by_state["unrenderable"])


def batches(n: int, job: str = "tags") -> list[BatchReport]:
    """A batch of up to 50,000 requests per day, at gpt-4o-mini's prices; then one still
    in progress, whose tokens and cost are not known yet."""
    out, sent, day = [], 0, 0
    while sent < n:
        size = min(50_000, n - sent)
        created = START + timedelta(days=day)
        tokens = Tokens(input=410 * size, cached_input=128 * size, output=64 * size)
        uncached = Decimal(tokens.input - tokens.cached_input)
        cost = (uncached * Decimal("0.075") + Decimal(tokens.cached_input) * Decimal("0.0375")
                + Decimal(tokens.output) * Decimal("0.30")) / 1_000_000
        out.append(BatchReport(job, f"batch_{day:04d}{'a' * 20}", "openai", "completed", size,
                               created, created + timedelta(hours=3), tokens, cost, cost * 2))
        sent += size
        day += 1
    created = START + timedelta(days=day)
    out.append(BatchReport(job, f"batch_{day:04d}{'b' * 20}", "openai", "in_progress", 12,
                           created))
    return out


def job(n: int, name: str = "tags") -> JobReport:
    return JobReport(
        name=name, file=f"jobs/{name}.yaml", model="gpt-4o-mini",
        endpoint="/v1/chat/completions", provider="openai",
        fingerprint=hashlib.sha256(name.encode()).hexdigest(), output_key=f"llm_{name}",
        counts=counts(n), input_fields=FIELDS, output_schema=SCHEMA,
        changes=["model gpt-4o → gpt-4o-mini", "template prompts/tags.user.j2 changed",
                 "    -Title: {{ title }}", "    +Title: {{ title | trim }}"],
        failures=failures(n), render_errors=render_errors(n), points=points(n))


def report(n: int, jobs: int = 1) -> ReportData:
    names = ["tags"] + [f"tags{k}" for k in range(2, jobs + 1)]
    return ReportData(project="videos", generated_at=START + timedelta(days=3),
                      jobs=[job(n, name) for name in names],
                      batches=[b for name in names for b in batches(n, name)])
