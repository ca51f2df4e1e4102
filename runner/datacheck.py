"""Checking a job against its data: do the keys its filter and `source.fields` name appear
in the collection, with values of the type the filter compares them to?

A filter that names a key no point has (`key: trak`) or compares an integer field to a
string (`year: "2026"`) selects nothing, without any error from Qdrant; an empty selection
then looks like a job that is up to date. These checks read a sample of the collection
(its first points, payloads only) and say what looks wrong, where it is written, and the
likely word — for `plan` and `apply` when a job selects nothing, and for `validate
--qdrant` always. They are warnings: a sample cannot prove a key absent.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import Location

if TYPE_CHECKING:
    from qdrant_client import QdrantClient

    from .jobs import Job

SAMPLE_POINTS = 500
_BOOL_KEYS = ("must", "should", "must_not")


@dataclass(frozen=True)
class DataWarning:
    """Something about a job that its data makes look wrong."""

    job: str
    message: str
    where: Location | None = None
    hint: str | None = None

    def text(self) -> str:
        where = f"{self.where}: " if self.where else ""
        return where + self.message + (f" ({self.hint})" if self.hint else "")

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"job": self.job, "message": self.message,
                               "file": None, "line": None, "key": None, "hint": self.hint}
        if self.where:
            out.update(file=self.where.file, line=self.where.line or None,
                       key=self.where.key or None)
        return out


@dataclass(frozen=True)
class Sample:
    """The payloads of the first points of a collection, and how many points it has."""

    collection: str
    payloads: list[dict]
    total: int

    @property
    def keys(self) -> list[str]:
        seen: dict[str, None] = {}
        for payload in self.payloads:
            seen.update(dict.fromkeys(payload))
        return [key for key in seen if not key.startswith("_batchrun_")]


def sample(client: QdrantClient, collection: str, limit: int = SAMPLE_POINTS) -> Sample:
    """The first `limit` points' payloads (no vectors), and the collection's size."""
    records, _ = client.scroll(collection, limit=limit, with_payload=True, with_vectors=False)
    total = client.count(collection, exact=True).count
    return Sample(collection, [r.payload or {} for r in records], total)


@dataclass(frozen=True)
class Condition:
    """One field condition of a filter: its key, what it checks, where it is written."""

    key: str
    check: str        # match, range, values_count, is_empty, is_null, geo_*
    value: Any
    path: tuple[Any, ...]   # spec key path of the condition


def conditions(data: Any, path: tuple[Any, ...], prefix: str = "") -> Iterator[Condition]:
    """Every field condition of a filter (already checked for shape), nested ones with
    their key in Qdrant's `outer[].inner` form."""
    if not isinstance(data, dict):
        return
    for kind in _BOOL_KEYS:
        items = data.get(kind)
        if items is None:
            continue
        listed = isinstance(items, list)
        for i, item in enumerate(items if listed else [items]):
            yield from _condition(item, (*path, kind, i) if listed else (*path, kind), prefix)
    min_should = data.get("min_should")
    if isinstance(min_should, dict):
        for i, item in enumerate(min_should.get("conditions") or []):
            yield from _condition(item, (*path, "min_should", "conditions", i), prefix)


def _condition(item: Any, path: tuple[Any, ...], prefix: str) -> Iterator[Condition]:
    if not isinstance(item, dict):
        return
    if "key" in item:
        check = next((k for k in item if k != "key"), "")
        yield Condition(prefix + str(item["key"]), check, item.get(check), path)
    elif "nested" in item and isinstance(item["nested"], dict):
        nested = item["nested"]
        yield from conditions(nested.get("filter"), (*path, "nested", "filter"),
                              f"{prefix}{nested.get('key')}[].")
    elif set(item) & {"is_empty", "is_null"}:
        return   # about a key being absent: an absent key is what it looks for
    else:
        yield from conditions(item, path, prefix)


_SEGMENT = re.compile(r"([^.\[\]]+)(\[\])?")


def values_at(payload: Any, key: str) -> list[Any]:
    """The values a Qdrant key path (`a.b`, `a[].b`, `a[]`) reaches in one payload; an
    array is matched by its elements, as Qdrant does."""
    current = [payload]
    for name, _ in _SEGMENT.findall(key):
        found = []
        for value in current:
            if isinstance(value, dict) and name in value:
                inner = value[name]
                found.extend(inner if isinstance(inner, list) else [inner])
        current = found
    return current


def kind_of(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "integer"
    if isinstance(value, float):
        return "number"
    if isinstance(value, str):
        return "datetime" if _is_datetime(value) else "string"
    return "object" if isinstance(value, dict) else "null" if value is None else "array"


def _is_datetime(text: str) -> bool:
    if len(text) < 10 or not text[:4].isdigit() or text[4] != "-":
        return False
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


_PLURAL = {"integer": "integers", "number": "numbers", "string": "strings",
           "datetime": "date-times", "boolean": "booleans", "object": "objects",
           "null": "nulls", "array": "arrays"}


def check_job(job: Job, data: Sample) -> list[DataWarning]:
    """What looks wrong about the job's filter and `source.fields` in the sample."""
    if not data.payloads:
        return [DataWarning(job.name, f"collection {data.collection!r} is empty",
                            job.at("source", "collection"),
                            "load points first: payloads are enough, vectors are not needed")]
    warnings = []
    source = job.spec.source
    for condition in conditions(source.filter, ("source", "filter")):
        warnings.extend(_check_condition(job, condition, data))
    for i, name in enumerate(source.fields or []):
        if not any(values_at(p, name) or name in p for p in data.payloads):
            warnings.append(DataWarning(
                job.name, f"source.fields names {name!r}, which is in none of "
                f"{_sampled(data)}" + _did_you_mean(name, data.keys),
                job.at("source", "fields", i)))
    return warnings


def _sampled(data: Sample) -> str:
    if len(data.payloads) >= data.total:
        return f"the {data.total:,} points of {data.collection!r}"
    return (f"the {len(data.payloads):,} sampled points of {data.collection!r} "
            f"({data.total:,} in all)")


def _did_you_mean(key: str, keys: list[str]) -> str:
    head = _SEGMENT.match(key)
    name = head.group(1) if head else key
    close = difflib.get_close_matches(name, keys, n=1, cutoff=0.6)
    if close and close[0] != name:
        return f"; did you mean {key.replace(name, close[0], 1)!r}?"
    return f"; keys found: {', '.join(keys[:12])}" + (" …" if len(keys) > 12 else "")


def _check_condition(job: Job, condition: Condition, data: Sample) -> list[DataWarning]:
    found = [v for p in data.payloads for v in values_at(p, condition.key)]
    where = job.at(*condition.path, "key")
    if not found and condition.check != "values_count":
        return [DataWarning(job.name, f"filter key {condition.key!r} is in none of "
                            f"{_sampled(data)}" + _did_you_mean(condition.key, data.keys),
                            where)]
    held = {kind_of(v) for v in found} - {"null"}
    wanted = _compared(condition)
    if condition.check == "match" and wanted is not None:   # text is text, dated or not
        held = {"string" if k == "datetime" else k for k in held}
        wanted = {"string" if k == "datetime" else k for k in wanted}
    if not held or wanted is None or wanted & held or (wanted == {"integer"} and "number" in held):
        return []
    shown_value = json.dumps(_shown(condition), ensure_ascii=False)
    kinds = " and ".join(sorted(_PLURAL[k] for k in held))
    return [DataWarning(job.name, f"filter compares {condition.key!r} to {shown_value}, but "
                        f"{condition.key!r} holds {kinds} in {_sampled(data)}",
                        job.at(*condition.path, condition.check), _type_hint(wanted, held))]


def _compared(condition: Condition) -> set[str] | None:
    """The kinds of value a condition compares its key with (None: it does not say)."""
    value = condition.value
    if not isinstance(value, dict):
        return None
    if condition.check == "match":
        if "value" in value:
            return {kind_of(value["value"])}
        if "any" in value or "except" in value:
            items = value.get("any", value.get("except")) or []
            return {kind_of(v) for v in items} or None
        return {"string"}   # text, phrase, text_any: full-text on strings
    if condition.check == "range":
        kinds = {kind_of(v) for v in value.values()}
        return {"integer", "number"} if kinds <= {"integer", "number"} else kinds
    return None


def _shown(condition: Condition) -> Any:
    value = condition.value
    if condition.check == "match" and isinstance(value, dict) and len(value) == 1:
        return next(iter(value.values()))
    return value


def _type_hint(wanted: set[str], held: set[str]) -> str:
    if wanted <= {"string", "datetime"} and held & {"integer", "number"}:
        return "write the number without quotes"
    if wanted & {"integer", "number"} and held & {"string"}:
        return "quote the value: the field holds text"
    return f"compare it with {' or '.join(sorted(_PLURAL[k] for k in held))}"


def empty_selection(client: QdrantClient, job: Job) -> list[DataWarning]:
    """Why a job selects nothing, as far as a sample of its collection can tell."""
    data = sample(client, job.spec.source.collection)
    warnings = check_job(job, data)
    if not warnings and job.spec.source.filter:
        warnings.append(DataWarning(
            job.name, f"source.filter selects none of the {data.total:,} points of "
            f"{data.collection!r}; its keys and value types match the sampled points, so "
            "perhaps no point has those values", job.at("source", "filter")))
    return warnings
