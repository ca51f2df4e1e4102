"""The few points a person looks at before paying for a batch: which ones (named, or a
deterministic sample), and each one's request exactly as apply would pack it.

`render` and `try` both start here. A request is built by the very code apply uses —
render.py's frame and parts, keys.BodyFrame's bytes, key and batch line — so what is shown
is byte for byte what apply sends, and its key is the key the result cache knows.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from dataclasses import dataclass
from typing import Any

from .errors import BatchrunError
from .jobs import Job
from .keys import BodyFrame
from .render import render_parts
from .select import Point, Selection
from .tokens import TokenCount, max_output_tokens, prompt_tokens

DEFAULT_SAMPLE = 5


@dataclass(frozen=True)
class Rendered:
    """One point's request, as apply would pack it."""

    point: Point
    key: str            # the request key: the batch line's custom_id
    endpoint: str
    body: dict          # the body sent (what `body_bytes` is the canonical JSON of)
    body_bytes: bytes
    line: bytes         # the batch input line, newline included
    tokens: TokenCount  # input tokens the API will bill (exact, or approximate: it says)
    output_cap: int | None   # the most output tokens the request allows (None: uncapped)


def render_point(job: Job, frame: BodyFrame, point: Point) -> Rendered:
    """The request for one point; RenderError when its template fails on it."""
    parts = render_parts(job, point.id, point.payload)
    body_bytes = frame.serialise(parts)
    key = frame.key(body_bytes)
    body = frame.body(parts)
    return Rendered(point, key, frame.endpoint, body, body_bytes, frame.line(key, body_bytes),
                    prompt_tokens(frame.endpoint, body),
                    max_output_tokens(frame.endpoint, frame.constant))


def _rank(point_id: Any) -> int:
    """Where a point falls in the sample: a hash of its id alone, so the same points are
    drawn on every run whatever their payload, and in whatever order Qdrant returns them."""
    return int(hashlib.sha256(json.dumps(point_id).encode()).hexdigest(), 16)


def sample_ids(selection: Selection, size: int) -> list[Any]:
    """`size` of the selected points' ids, the same ones on every run: those whose id
    hashes lowest. One pass over the ids (no payloads), holding only `size` of them."""
    heap: list[tuple[int, int, Any]] = []    # (-rank, arrival, id): the lowest ranks kept
    for arrival, point_id in enumerate(selection.ids()):
        item = (-_rank(point_id), arrival, point_id)
        if len(heap) < size:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)
    return [point_id for _, _, point_id in sorted(heap, reverse=True)]


def chosen_points(selection: Selection, ids: list[Any], size: int) -> list[Point]:
    """The points named by `ids` (all must be selected), else a sample of `size`; in the
    order named, or the sample's order."""
    job = selection.job
    wanted = ids or sample_ids(selection, size)
    if not wanted:
        raise BatchrunError(f"{job.name} selects no point of {selection.collection!r}",
                            where=job.at("source"), hint="`batchrun plan` says why, as far "
                            "as a sample of the collection can tell")
    found = {point.id: point for point in selection.points_with_ids(wanted)} if wanted else {}
    missing = [point_id for point_id in wanted if point_id not in found]
    if missing:
        shown = ", ".join(str(i) for i in missing[:5]) + (" …" if len(missing) > 5 else "")
        raise BatchrunError(
            f"{job.name} does not select point{'s' * (len(missing) != 1)} {shown} of "
            f"{selection.collection!r}", where=job.at("source"),
            hint="name points its source.filter selects (ids are integers or UUIDs), or use "
                 "--sample N")
    return [found[point_id] for point_id in wanted]


def parse_id(text: str) -> Any:
    """A point id as typed: an integer, or a UUID string."""
    return int(text) if text.isdigit() else text
