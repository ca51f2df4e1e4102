"""Distributions of a job's output fields, aggregated over every point in one pass, in
memory that does not grow with the collection.

The output schema says what each top-level field is: an enum (count each value), an array
(count each item), a number (a histogram), a boolean, or free text (count values; charted
only when a few values cover most answers, like a `language` field). Counting is exact
until a field has more than `ValueCounter.limit` distinct values; past that it becomes a
Misra–Gries summary: counts are lower bounds, low by at most `error`, and the page says so.
Numbers keep exact value counts up to `NumberHistogram.exact_limit` distinct values, then
fold into power-of-two-wide bins (still exact counts, coarser edges).
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

ENUM, ITEMS, NUMBER, BOOLEAN, TEXT, OTHER = "enum", "items", "number", "boolean", "text", "other"


@dataclass(frozen=True)
class OutputField:
    """A top-level output property and what kind of values it holds."""

    name: str
    kind: str                  # enum | items | number | boolean | text | other
    values: tuple = ()         # the allowed values (an enum, or an array of enum items)
    integer: bool = False      # a number field whose schema says integer


def output_fields(schema: Mapping[str, Any] | None) -> list[OutputField]:
    """The output columns a schema declares (none for text or embedding output)."""
    if not schema or not isinstance(schema.get("properties"), Mapping):
        return []
    return [_field(name, _resolve(sub, schema)) for name, sub in schema["properties"].items()]


def _resolve(node: Any, root: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow one local `$ref` (`#/$defs/x`); strict schemas use nothing fancier."""
    ref = node.get("$ref") if isinstance(node, Mapping) else None
    if isinstance(ref, str) and ref.startswith("#/"):
        target: Any = root
        for part in ref[2:].split("/"):
            target = target.get(part, {}) if isinstance(target, Mapping) else {}
        return target if isinstance(target, Mapping) else {}
    return node if isinstance(node, Mapping) else {}


def _types(node: Mapping[str, Any]) -> set[str]:
    declared = node.get("type")
    types = set(declared) if isinstance(declared, list) else {declared} if declared else set()
    return types - {"null"}   # nullable fields are charted as their type, null as a value


def _field(name: str, node: Mapping[str, Any]) -> OutputField:
    types = _types(node)
    if "enum" in node:
        return OutputField(name, ENUM, tuple(v for v in node["enum"] if v is not None))
    if types == {"boolean"}:
        return OutputField(name, BOOLEAN, (True, False))
    if types and types <= {"number", "integer"}:
        return OutputField(name, NUMBER, integer=types == {"integer"})
    if types == {"array"}:
        items = node.get("items")
        enum = items.get("enum", ()) if isinstance(items, Mapping) else ()
        return OutputField(name, ITEMS, tuple(v for v in enum if v is not None))
    if types == {"string"}:
        return OutputField(name, TEXT)
    return OutputField(name, OTHER)


def value_key(value: Any) -> str:
    """A hashable key that keeps `true`, `1` and `"1"` apart: strings as they are, any
    other JSON value as its JSON text behind a NUL (no model writes NUL in an enum)."""
    if type(value) is str:
        return value
    return "\0" + json.dumps(value, ensure_ascii=False, sort_keys=True)


def key_label(key: str) -> str:
    return key[1:] if key.startswith("\0") else key


def key_json(key: str) -> str:
    """The key as the JSON text of its value (what the page's filters compare)."""
    return key[1:] if key.startswith("\0") else json.dumps(key, ensure_ascii=False)


class ValueCounter:
    """Counts of values: exact up to `limit` distinct values, then Misra–Gries (counts
    are lower bounds; `error` bounds how low)."""

    limit = 10_000

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.total = 0
        self.error = 0

    def add(self, key: str) -> None:
        self.total += 1
        self.counts[key] += 1
        if len(self.counts) > self.limit:
            self._shrink()

    def _shrink(self) -> None:
        # Batch Misra–Gries: subtract the median count from every key and drop those at
        # zero. Each subtraction removes at least limit/2 × cut from the kept sum, so the
        # total subtracted from any key is at most 2·total/limit.
        cut = sorted(self.counts.values())[len(self.counts) // 2]
        self.error += cut
        self.counts = Counter({k: c - cut for k, c in self.counts.items() if c > cut})

    def top(self, n: int) -> list[tuple[str, int]]:
        return self.counts.most_common(n)


class NumberHistogram:
    """Exact value counts while there are few distinct values, then exact counts in bins
    whose width is a power of two, doubled whenever there are too many bins."""

    exact_limit = 2048
    bin_limit = 1024

    def __init__(self, integer: bool = False) -> None:
        self.integer = integer
        self.exact: Counter[float] | None = Counter()
        self.bins: Counter[int] = Counter()
        self.width = 0.0
        self.count, self.total = 0, 0.0
        self.low, self.high = math.inf, -math.inf

    def add(self, value: float) -> None:
        if not math.isfinite(value):
            return
        self.count += 1
        self.total += value
        self.low, self.high = min(self.low, value), max(self.high, value)
        if self.exact is not None:
            self.exact[value] += 1
            if len(self.exact) > self.exact_limit:
                self._to_bins()
            return
        self.bins[math.floor(value / self.width)] += 1
        while len(self.bins) > self.bin_limit:
            self._coarsen()

    def _to_bins(self) -> None:
        assert self.exact is not None
        span = max(self.high - self.low, 1e-300)
        self.width = 2.0 ** math.ceil(math.log2(span / self.bin_limit))
        for value, n in self.exact.items():
            self.bins[math.floor(value / self.width)] += n
        self.exact = None
        while len(self.bins) > self.bin_limit:
            self._coarsen()

    def _coarsen(self) -> None:
        self.width *= 2
        merged: Counter[int] = Counter()
        for index, n in self.bins.items():
            merged[index // 2] += n
        self.bins = merged

    @property
    def mean(self) -> float | None:
        return self.total / self.count if self.count else None

    def display_bins(self, most: int = 20) -> list[tuple[float, float, int]]:
        """At most `most` bins (low, high, count) covering every value; integer fields
        with a small range get one bar per integer."""
        if not self.count:
            return []
        if self.exact is not None:
            values = sorted(self.exact.items())
            whole = all(float(v).is_integer() for v, _ in values)
            if whole and self.high - self.low < most:
                return [(v, v, self.exact.get(v, 0)) for v in
                        (float(x) for x in range(int(self.low), int(self.high) + 1))]
            return _group(values, self.low, self.high, most, whole)
        first, last = min(self.bins), max(self.bins)
        per = math.ceil((last - first + 1) / most)
        out = []
        for start in range(first, last + 1, per):
            n = sum(self.bins.get(i, 0) for i in range(start, start + per))
            out.append((start * self.width, (start + per) * self.width, n))
        return out


def _group(values: list[tuple[float, int]], low: float, high: float, most: int,
           whole: bool) -> list[tuple[float, float, int]]:
    """Equal-width bins over [low, high] (the last one closed); whole numbers get integer
    widths, so no bar straddles a value."""
    if high == low:
        return [(low, high, sum(n for _, n in values))]
    width = (high - low) / most
    if whole:
        width = float(math.ceil(width))
    bins = int((high - low) // width) + 1 if whole else most
    counts = [0] * bins
    for value, n in values:
        counts[min(int((value - low) // width), bins - 1)] += n
    return [(low + i * width, low + (i + 1) * width, n) for i, n in enumerate(counts)]


@dataclass
class FieldStats:
    output_field: OutputField
    answered: int = 0              # points whose result has this field, null included
    nulls: int = 0
    values: ValueCounter = field(default_factory=ValueCounter)
    numbers: NumberHistogram | None = None
    lengths: Counter[int] = field(default_factory=Counter)   # array lengths

    def __post_init__(self) -> None:
        if self.output_field.kind == NUMBER:
            self.numbers = NumberHistogram(self.output_field.integer)

    def add(self, value: Any) -> None:
        self.answered += 1
        if value is None:
            self.nulls += 1
            return
        kind = self.output_field.kind
        if kind == NUMBER and isinstance(value, (int, float)) and not isinstance(value, bool):
            assert self.numbers is not None
            self.numbers.add(float(value))
        elif kind == ITEMS and isinstance(value, list):
            self.lengths[min(len(value), 1000)] += 1
            for item in value:
                self.values.add(value_key(item))
        elif kind in (ENUM, BOOLEAN, TEXT):
            self.values.add(value_key(value))


@dataclass
class JobStats:
    """Aggregates over every point of a job: how many have a result, and per field."""

    fields: list[OutputField]
    points: int = 0
    written: int = 0
    not_objects: int = 0           # results that are not objects although fields are declared
    by_field: dict[str, FieldStats] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.by_field = {f.name: FieldStats(f) for f in self.fields}

    def add(self, result: Any) -> None:
        self.points += 1
        if result is None:
            return
        self.written += 1
        if not self.fields:
            return
        if not isinstance(result, dict):
            self.not_objects += 1
            return
        for name, stats in self.by_field.items():
            if name in result:
                stats.add(result[name])

    def add_all(self, results: Iterable[Any]) -> None:
        for result in results:
            self.add(result)
