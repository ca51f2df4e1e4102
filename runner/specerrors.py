"""Spec errors in a user's words: a pydantic validation error becomes one line that names
the key, says what was expected, and suggests the likely word.

`validate_model(Model, data, positions)` is how project.py and jobs.py (and filters.py,
through `expected`, `shown` and `data_path`) turn a model's errors into a SpecError at the
file, line and key of the YAML: an unknown key says where it belongs or what it is probably
a typo of; a missing key is reported after the typo that explains it; a wrong value says
what was expected and what was found.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Mapping
from typing import Any

import pydantic
from pydantic import BaseModel

from .errors import SpecError
from .spec import COMMON_PARAMS, JobSpec
from .yamlfile import KeyPath, Positions, dotted


def validate_model(model: type[BaseModel], data: Any, positions: Positions) -> Any:
    """`model.model_validate(data)`, or a SpecError pointing into the file."""
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        raise _spec_error(exc.errors(), model, data, positions) from None


# Which of several errors to report: a misspelled key explains the "missing" one it causes.
_FIRST = {"extra_forbidden": 0, "missing": 2}


def _spec_error(errors: list, model: type[BaseModel], data: Any,
                positions: Positions) -> SpecError:
    first = min(errors, key=lambda e: _FIRST.get(e["type"], 1))
    path = data_path(first, data)
    others = {data_path(e, data) for e in errors} - {path}
    key = str(path[-1]) if path else ""
    hint = next((f.description for f in reversed(_fields_along(model, path)) if f.description),
                None)
    if first["type"] == "extra_forbidden":
        allowed = _allowed_keys(model, path[:-1])
        close = difflib.get_close_matches(key, allowed, n=1)
        others -= {(*path[:-1], *close)}  # the typo is why that key is "missing"
        message = (f"unknown key {key!r}; {_suggestion(model, path, close)}"
                   f"expected one of: {', '.join(allowed)}")
        hint = None
    elif first["type"] == "missing":
        message = f"missing required key {key!r}"
    else:  # a wrong value; a union reports one error per member, said as "a or b"
        wanted = [expected(e) for e in errors if data_path(e, data) == path]
        value = value_at(data, path)
        message = f"expected {' or '.join(dict.fromkeys(wanted))}, got {shown(value)}"
        options = re.findall(r"'([^']+)'", first.get("ctx", {}).get("expected", "")) \
            if first["type"] == "literal_error" else []
        close = difflib.get_close_matches(str(value), options, n=1)
        message += f"; did you mean {close[0]!r}?" if close else ""
    more = f" (and {len(others)} more)" if others else ""
    return SpecError(message + more, where=positions.at(path), hint=hint)


def _suggestion(model: type[BaseModel], path: KeyPath, close: list[str]) -> str:
    """For an unknown key: where it belongs instead, or the key it is probably a typo of."""
    key = str(path[-1])
    homes = [dotted(p) for p in _key_paths(model) if p[-1] == key and p != path]
    if homes:
        return f"{key!r} belongs at {' or '.join(homes)}; "
    if close:
        return f"did you mean {close[0]!r}? "
    param = difflib.get_close_matches(key, sorted(COMMON_PARAMS), n=1, cutoff=0.8)
    if param and model is JobSpec and len(path) == 1:
        return f"request parameters go under params: (params: {{{param[0]}: …}}); "
    return ""


def _key_paths(model: type[BaseModel], prefix: KeyPath = ()) -> list[KeyPath]:
    """Every key a model accepts, nested models included: ("source", "limit"), ..."""
    out: list[KeyPath] = []
    for name, info in model.model_fields.items():
        path = (*prefix, info.alias or name)
        out.append(path)
        sub = _submodel(info.annotation)
        if sub is not None:
            out.extend(_key_paths(sub, path))
    return out


def _submodel(annotation: Any) -> type[BaseModel] | None:
    candidates = [annotation, *getattr(annotation, "__args__", ())]
    return next((c for c in candidates if isinstance(c, type) and issubclass(c, BaseModel)), None)


def _fields_along(model: type[BaseModel], path: KeyPath) -> list[Any]:
    """The pydantic fields a key path runs through, as far as it names fields."""
    fields: list[Any] = []
    current: type[BaseModel] | None = model
    for part in path:
        field = next((f for name, f in current.model_fields.items()
                      if (f.alias or name) == part), None) if current else None
        if field is None:
            break
        fields.append(field)
        current = _submodel(field.annotation)
    return fields


def _allowed_keys(model: type[BaseModel], path: KeyPath) -> list[str]:
    fields = _fields_along(model, path)
    current = model if not path else \
        _submodel(fields[-1].annotation) if len(fields) == len(path) else None
    return [f.alias or name for name, f in current.model_fields.items()] if current else []


# What a pydantic error type expected, in a user's words (the error's `ctx` fills the blanks).
_EXPECTED = {
    "string_type": "a string", "string_too_short": "a non-empty string",
    "int_type": "an integer", "int_parsing": "an integer", "int_from_float": "an integer",
    "float_type": "a number", "float_parsing": "a number", "bool_type": "true or false",
    "bool_parsing": "true or false", "dict_type": "a mapping", "model_type": "a mapping",
    "model_attributes_type": "a mapping", "list_type": "a list", "none_required": "nothing",
    "literal_error": "one of {expected}", "less_than_equal": "at most {le:,}",
    "less_than": "less than {lt:,}", "greater_than_equal": "at least {ge:,}",
    "greater_than": "more than {gt:,}", "string_pattern_mismatch": "text matching {pattern}",
    "value_error": "{error}", "missing": "this key",
    "byte_size": "a size such as 200MB, 500kB or 1000000",
}


def expected(error: Mapping[str, Any]) -> str:
    """`{'type': 'less_than_equal', 'ctx': {'le': 50000}}` -> "at most 50,000"."""
    template = _EXPECTED.get(error["type"])
    if template is None:
        return str(error["msg"]).replace("Input should be ", "")
    return template.format(**{k: _plain(v) for k, v in (error.get("ctx") or {}).items()})


def _plain(value: Any) -> Any:
    if isinstance(value, Exception):
        return str(value)
    return int(value) if isinstance(value, float) and value.is_integer() else value


def shown(value: Any) -> str:
    """A value as a message quotes it: scalars as written, collections by kind."""
    if isinstance(value, (dict, list)):
        kind = "mapping" if isinstance(value, dict) else "list"
        return f"a {kind}" if value else f"an empty {kind}"
    text = json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= 60 else text[:57] + "..."


def data_path(error: Mapping[str, Any], data: Any) -> KeyPath:
    """A validation error's location as keys of the data: pydantic adds the names of union
    members ("str", "FieldCondition") that are no key of the file."""
    path: list[Any] = []
    current = data
    loc = tuple(error["loc"])
    for i, part in enumerate(loc):
        if isinstance(current, dict) and part in current:
            current = current[part]
        elif isinstance(current, list) and isinstance(part, int) and part < len(current):
            current = current[part]
        elif not (error["type"] == "missing" and i == len(loc) - 1):
            continue
        path.append(part)
    return tuple(path)


def value_at(data: Any, path: KeyPath) -> Any:
    for part in path:
        data = data[part]
    return data
