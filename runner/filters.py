"""Qdrant filters in a spec: checked by hand, so a typo gives one readable line.

A spec's `source.filter` has the JSON shape of Qdrant's REST API. Handing it straight to
`models.Filter` turns one misspelled key into dozens of pydantic union errors; walking it
ourselves lets us name the exact key, say what was expected and suggest the likely word.
`check_filter` walks it without qdrant-client (loading a spec stays fast); `qdrant_filter`,
used where points are read, builds qdrant-client's model, for any shape the walk lets pass.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from .errors import SpecError
from .specerrors import data_path, expected, shown, value_at
from .yamlfile import KeyPath, Positions

if TYPE_CHECKING:
    from qdrant_client.http import models

_FILTER_KEYS = ("must", "should", "must_not", "min_should")
_FIELD_CHECKS = ("match", "range", "geo_bounding_box", "geo_radius", "geo_polygon",
                 "values_count", "is_empty", "is_null")
_MATCH_KINDS = ("value", "text", "any", "except", "phrase", "text_any")

_BOUNDS = ("gt", "gte", "lt", "lte")
_CONDITION_KINDS = ("key", "has_id", "has_vector", "is_empty", "is_null", "nested", *_FILTER_KEYS)


def check_filter(data: Any, positions: Positions, path: KeyPath) -> None:
    """Check a filter's shape, naming the first wrong key where it is written."""
    _check_filter(data, positions, path)


def qdrant_filter(data: Any, positions: Positions, path: KeyPath) -> models.Filter:
    """Check a filter's shape and return the Qdrant model for it."""
    import pydantic
    from qdrant_client.http import models  # only where points are read: it is slow to load

    _check_filter(data, positions, path)
    try:
        return models.Filter.model_validate(data)
    except pydantic.ValidationError as exc:  # a shape the walk above does not know
        first = exc.errors()[0]
        inner = data_path(first, data)
        problem = f"missing key {inner[-1]!r}" if first["type"] == "missing" and inner else \
            f"expected {expected(first)}, got {shown(value_at(data, inner))}"
        raise SpecError(f"invalid filter: {problem}", where=positions.at((*path, *inner))) from None


def _fail(message: str, positions: Positions, path: KeyPath, hint: str | None = None) -> None:
    raise SpecError(message, where=positions.at(path), hint=hint)


def _unknown(key: str, allowed: tuple[str, ...], what: str, positions: Positions,
             path: KeyPath) -> None:
    close = difflib.get_close_matches(key, allowed, n=1)
    suggestion = f"did you mean {close[0]!r}? " if close else ""
    _fail(f"unknown key {key!r} in {what}; {suggestion}expected one of: {', '.join(allowed)}",
          positions, (*path, key))


def _check_filter(data: Any, positions: Positions, path: KeyPath) -> None:
    if not isinstance(data, dict):
        _fail(f"expected a filter (a mapping with {', '.join(_FILTER_KEYS)}), got {shown(data)}",
              positions, path)
    for key, value in data.items():
        if key not in _FILTER_KEYS:
            _unknown(key, _FILTER_KEYS, "filter", positions, path)
        if key == "min_should":
            _check_min_should(value, positions, (*path, key))
            continue
        items = value if isinstance(value, list) else [value]
        for i, condition in enumerate(items):
            _check_condition(condition, positions, (*path, key, i) if isinstance(value, list)
                             else (*path, key))


def _check_min_should(value: Any, positions: Positions, path: KeyPath) -> None:
    if not isinstance(value, dict) or set(value) != {"conditions", "min_count"}:
        _fail("min_should needs exactly: conditions (a list) and min_count (an integer)",
              positions, path)
    if not isinstance(value["conditions"], list):
        _fail("expected a list of conditions", positions, (*path, "conditions"))
    for i, condition in enumerate(value["conditions"]):
        _check_condition(condition, positions, (*path, "conditions", i))
    if not isinstance(value["min_count"], int) or isinstance(value["min_count"], bool):
        _fail("expected an integer", positions, (*path, "min_count"))


def _check_condition(condition: Any, positions: Positions, path: KeyPath) -> None:
    if not isinstance(condition, dict) or not condition:
        _fail(f"expected a condition (a mapping such as {{key: region, match: {{value: US}}}}), "
              f"got {shown(condition)}", positions, path)
    keys = set(condition)
    if "key" in keys:
        _check_field_condition(condition, positions, path)
    elif keys & set(_FILTER_KEYS):
        _check_filter(condition, positions, path)
    elif len(keys) != 1 or not keys <= set(_CONDITION_KINDS):
        extra = sorted(keys - set(_CONDITION_KINDS)) or sorted(keys)
        _unknown(str(extra[0]), _CONDITION_KINDS, "condition", positions, path)
    elif "nested" in keys:
        nested = condition["nested"]
        if not isinstance(nested, dict) or set(nested) != {"key", "filter"}:
            _fail("nested needs exactly: key and filter", positions, (*path, "nested"))
        _check_filter(nested["filter"], positions, (*path, "nested", "filter"))
    elif keys & {"is_empty", "is_null"}:
        (kind,) = keys
        if not isinstance(condition[kind], dict) or set(condition[kind]) != {"key"} \
                or not isinstance(condition[kind]["key"], str):
            _fail(f"expected {{key: field_name}}, got {shown(condition[kind])}",
                  positions, (*path, kind))
    elif "has_id" in keys and not isinstance(condition["has_id"], list):
        _fail(f"expected a list of point ids, got {shown(condition['has_id'])}", positions,
              (*path, "has_id"))
    elif "has_vector" in keys and not isinstance(condition["has_vector"], str):
        _fail(f"expected a vector name, got {shown(condition['has_vector'])}", positions,
              (*path, "has_vector"))


def _check_field_condition(condition: dict, positions: Positions, path: KeyPath) -> None:
    allowed = ("key", *_FIELD_CHECKS)
    for key in condition:
        if key not in allowed:
            _unknown(key, allowed, "field condition", positions, path)
    if not isinstance(condition["key"], str) or not condition["key"]:
        _fail(f"expected a payload field name, got {shown(condition['key'])}", positions,
              (*path, "key"))
    checks = [k for k in condition if k != "key"]
    if len(checks) != 1:
        _fail(f"a field condition needs exactly one of {', '.join(_FIELD_CHECKS)}; "
              f"got {', '.join(checks) or 'none'}", positions, path)
    check = checks[0]
    value = condition[check]
    where = (*path, check)
    if check == "match":
        _check_match(value, positions, where)
    elif check in ("range", "values_count"):
        _check_bounds(value, positions, where, allow_dates=check == "range")
    elif check in ("is_empty", "is_null"):
        if not isinstance(value, bool):
            _fail(f"expected true or false, got {shown(value)}", positions, where)
    else:
        _check_geo(check, value, positions, where)


def _check_match(value: Any, positions: Positions, path: KeyPath) -> None:
    if not isinstance(value, dict) or len(value) != 1:
        _fail(f"expected a mapping with one of: {', '.join(_MATCH_KINDS)} "
              f"(e.g. match: {{value: US}}), got {shown(value)}", positions, path)
    (kind,) = value
    if kind not in _MATCH_KINDS:
        _unknown(kind, tuple(_MATCH_KINDS), "match", positions, path)
    if kind in ("any", "except"):
        items = value[kind]
        if not isinstance(items, list) or not items or len({type(i) for i in items}) != 1 \
                or not isinstance(items[0], (str, int)) or isinstance(items[0], bool):
            _fail(f"expected a non-empty list of strings or of integers, got {shown(items)}",
                  positions, (*path, kind))
        return
    if kind == "value":
        if isinstance(value[kind], list):
            _fail("expected a string, an integer or a boolean, got a list",
                  positions, (*path, kind), hint="to match any of several values, write "
                  f"match: {{any: {json.dumps(value[kind], ensure_ascii=False)}}}")
        if not isinstance(value[kind], (str, int, bool)):
            _fail(f"expected a string, an integer or a boolean, got {shown(value[kind])}",
                  positions, (*path, kind),
                  hint="Qdrant matches exact values only; use range: {gte: …, lte: …} for "
                  "numbers with decimals")
        return
    if not isinstance(value[kind], str):
        _fail(f"expected a string, got {shown(value[kind])}", positions, (*path, kind))


def _check_bounds(value: Any, positions: Positions, path: KeyPath, *, allow_dates: bool) -> None:
    if not isinstance(value, dict) or not value:
        _fail(f"expected a mapping of {', '.join(_BOUNDS)}, got {shown(value)}", positions, path)
    wanted = "a number" + (" or an RFC 3339 date-time (2024-01-31T00:00:00Z)" if allow_dates
                           else "")
    for bound, limit in value.items():
        if bound not in _BOUNDS:
            _unknown(bound, _BOUNDS, "range", positions, path)
        number = isinstance(limit, (int, float)) and not isinstance(limit, bool)
        if not number and not (allow_dates and isinstance(limit, str) and _is_datetime(limit)):
            _fail(f"expected {wanted}, got {shown(limit)}", positions, (*path, bound))
    dates = [isinstance(v, str) for v in value.values()]
    if any(dates) and not all(dates):
        _fail("expected all bounds numbers or all date-times, not both", positions, path)


def _is_datetime(text: str) -> bool:
    try:
        datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


def _check_geo(kind: str, value: Any, positions: Positions, path: KeyPath) -> None:
    """A geo condition's shape, as qdrant-client's models define it."""
    if kind == "geo_bounding_box":
        _check_keys(value, {"top_left": _check_point, "bottom_right": _check_point},
                    positions, path)
    elif kind == "geo_radius":
        _check_keys(value, {"center": _check_point, "radius": _check_number}, positions, path)
    else:
        _check_keys(value, {"exterior": _check_line, "interiors": _check_lines}, positions, path,
                    optional=("interiors",))


Check = Callable[[Any, Positions, KeyPath], None]


def _check_keys(value: Any, checks: dict[str, Check], positions: Positions, path: KeyPath,
                optional: tuple[str, ...] = ()) -> None:
    if not isinstance(value, dict):
        _fail(f"expected a mapping with {', '.join(checks)}, got {shown(value)}",
              positions, path)
    for key in value:
        if key not in checks:
            _unknown(str(key), tuple(checks), "this condition", positions, path)
    for key, check in checks.items():
        if key in value:
            check(value[key], positions, (*path, key))
        elif key not in optional:
            _fail(f"missing key {key!r}", positions, (*path, key))


def _check_number(value: Any, positions: Positions, path: KeyPath) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        _fail(f"expected a number, got {shown(value)}", positions, path)


def _check_point(value: Any, positions: Positions, path: KeyPath) -> None:
    _check_keys(value, {"lon": _check_number, "lat": _check_number}, positions, path)


def _check_line(value: Any, positions: Positions, path: KeyPath) -> None:
    _check_keys(value, {"points": _check_points}, positions, path)


def _check_points(value: Any, positions: Positions, path: KeyPath) -> None:
    if not isinstance(value, list):
        _fail(f"expected a list of points ({{lon: …, lat: …}}), got {shown(value)}",
              positions, path)
    for i, point in enumerate(value):
        _check_point(point, positions, (*path, i))


def _check_lines(value: Any, positions: Positions, path: KeyPath) -> None:
    if value is None:
        return
    if not isinstance(value, list):
        _fail(f"expected a list of rings ({{points: […]}}), got {shown(value)}", positions, path)
    for i, line in enumerate(value):
        _check_line(line, positions, (*path, i))
