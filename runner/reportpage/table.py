"""The results table's rows: clipped, encoded once, and sampled deterministically.

A job's table holds every point when it has at most `cap` of them, else the `cap` points
whose ids hash lowest (blake2b of the id's text): the same points on every run and in
any scroll order, a uniform sample, and a point stays in it as the collection grows
unless a newcomer hashes lower. Memory is bounded by the cap, not by the collection: a
point is encoded only when it enters the sample.

Long values are clipped so that 100,000 points fit the page's size budget: each input
field gets a share of `TableLimits.input_chars` (between 60 and 240 characters), arrays
keep their first items, and vectors become "[1,536 numbers]". The page says it clips.
"""

from __future__ import annotations

import hashlib
import heapq
import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .contract import PointId

ELLIPSIS = "…"


@dataclass(frozen=True)
class TableLimits:
    """How much of the points the page embeds. The defaults keep a 100,000-point report of
    the sample videos near 12 MB, and opening it well under 2 s (see bench/report_page.py)."""

    rows: int = 20_000        # rows in all the tables together; each job gets an equal share
    page: int = 50            # rows per page (and rows written as HTML for readers without JS)
    input_chars: int = 900    # characters of one row's inputs, shared by its input fields
    input_items: int = 12     # array items shown per input value
    output_chars: int = 400   # characters per output string
    output_items: int = 50    # array items kept per output value (filters match on them)
    min_rows_per_job: int = 1_000

    def per_job(self, jobs: int) -> int:
        return max(self.min_rows_per_job, self.rows // max(jobs, 1))

    def chars_per_input(self, fields: int) -> int:
        return max(60, min(240, self.input_chars // max(fields, 1)))


def clip(value: Any, chars: int, items: int, depth: int = 0) -> Any:
    """A shorter copy of a JSON value: long strings end in "…", long arrays keep their
    first items and a "…+N more" marker, nested objects become (clipped) JSON text."""
    if isinstance(value, str):
        return value if len(value) <= chars else value[: chars - 1] + ELLIPSIS
    if isinstance(value, list):
        if len(value) > items and all(isinstance(v, (int, float)) for v in value):
            return f"[{len(value):,} numbers]"          # an embedding: nobody reads it
        kept = [clip(v, chars, items, depth + 1) for v in value[:items]]
        if len(value) > items:
            kept.append(f"{ELLIPSIS}+{len(value) - items:,} more")
        return kept
    if isinstance(value, dict):
        if depth == 0:
            return {k: clip(v, chars, items, 1) for k, v in value.items()}
        return clip(json.dumps(value, ensure_ascii=False), chars, items)
    return value


def priority(point_id: PointId) -> int:
    """The sampling order of a point: a hash of its id, the same in every run."""
    return int.from_bytes(hashlib.blake2b(str(point_id).encode(), digest_size=8).digest(), "big")


class Sample:
    """The `cap` lowest-priority rows seen so far (a max-heap on priority), kept encoded."""

    def __init__(self, cap: int):
        self.cap = cap
        self.seen = 0
        # (-priority, arrival, row JSON as UTF-8: a str holding one emoji takes 4 bytes a
        # character, and descriptions are full of them)
        self._heap: list[tuple[int, int, bytes]] = []

    def admits(self, point_id: PointId) -> tuple[int, int] | None:
        """Count a point; its place if it enters the sample (then `keep` its row), else
        None: most points are turned away before their row is ever encoded."""
        arrival, self.seen = self.seen, self.seen + 1
        rank = -priority(point_id)
        if len(self._heap) < self.cap or rank > self._heap[0][0]:   # lower than the worst
            return rank, arrival
        return None

    def keep(self, place: tuple[int, int], row: bytes) -> None:
        if len(self._heap) < self.cap:
            heapq.heappush(self._heap, (*place, row))
        else:
            heapq.heapreplace(self._heap, (*place, row))

    @property
    def complete(self) -> bool:
        return self.seen <= self.cap

    def rows(self) -> list[bytes]:
        """The kept rows in the order the points came (the collection's order)."""
        return [row for _, _, row in sorted(self._heap, key=lambda entry: entry[1])]


class RowEncoder:
    """A point as the table's JSON row: `[id, [inputs in column order], result]`."""

    def __init__(self, input_fields: Sequence[str], limits: TableLimits):
        self.input_fields = list(input_fields)
        self.chars = limits.chars_per_input(len(self.input_fields))
        self.limits = limits

    def encode(self, point_id: PointId, inputs: Mapping[str, Any], result: Any) -> bytes:
        row = [point_id,
               [clip(inputs.get(name), self.chars, self.limits.input_items, depth=1)
                for name in self.input_fields],
               clip(result, self.limits.output_chars, self.limits.output_items)]
        # "<" escaped so that no value can close the <script> block the rows live in.
        text = json.dumps(row, ensure_ascii=False, separators=(",", ":"))
        return text.replace("<", "\\u003c").encode("utf-8")


def cell_text(value: Any) -> str:
    """How a value reads in a cell; page.js's cellText does the same for later pages."""
    if value is None:
        return "—"
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return ", ".join(cell_text(v) for v in value)
    return json.dumps(value, ensure_ascii=False)


def json_chunks(rows: list[bytes], size: int = 250) -> Iterator[str]:
    """The rows as one JSON array, in chunks of `size` rows (~150 KB), so the page is
    written without a copy of megabytes of rows as one string."""
    yield "["
    for start in range(0, len(rows), size):
        if start:
            yield ","
        yield b",\n".join(rows[start:start + size]).decode("utf-8")
    yield "]"
