"""Output schemas: building the strict JSON Schema a job asks the model to fill, and
checking a user's schema against what Structured Outputs' strict mode accepts.

Strict mode (the only mode batchrun sends) requires every object to forbid additional
properties and to list every property as required; a schema that breaks those rules is
rejected by the API with a 400 for every line of the batch, so we reject it first.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Iterator
from typing import Any

from .yamlfile import KeyPath

# Keywords strict mode does not accept (OpenAI Structured Outputs, "supported schemas").
UNSUPPORTED_KEYWORDS = frozenset({
    "allOf", "not", "if", "then", "else", "dependentRequired", "dependentSchemas",
    "patternProperties", "unevaluatedProperties", "propertyNames", "minProperties",
    "maxProperties", "unevaluatedItems", "contains", "minContains", "maxContains",
    "uniqueItems",
})
MAX_NESTING = 10
TYPES = ("array", "boolean", "integer", "null", "number", "object", "string")


def from_fields(fields: dict[str, Any]) -> dict:
    """`output.fields` → a strict object schema (every object closed, every property required)."""
    return close_objects({"type": "object", "properties": copy.deepcopy(fields)})


def close_objects(schema: Any) -> Any:
    """Fill in `additionalProperties: false` and `required: [all]` on every object that does
    not say otherwise, so short `fields:` specs come out strict."""
    if isinstance(schema, dict):
        for key, value in schema.items():
            if key in ("properties", "$defs", "definitions") and isinstance(value, dict):
                for sub in value.values():
                    close_objects(sub)
            elif key in ("items", "additionalItems") or key in ("anyOf", "oneOf", "prefixItems"):
                close_objects(value)
        if schema.get("type") == "object" or "properties" in schema:
            schema.setdefault("additionalProperties", False)
            schema.setdefault("required", list(schema.get("properties", {})))
    elif isinstance(schema, list):
        for item in schema:
            close_objects(item)
    return schema


def strict_mode_problems(schema: Any) -> Iterator[tuple[KeyPath, str]]:
    """Every reason strict mode would reject `schema`, with the path inside the schema."""
    invalid = not_json_schema(schema)
    if invalid:
        yield invalid
        return
    if not isinstance(schema, dict) or schema.get("type") != "object":
        got = schema.get("type") if isinstance(schema, dict) else schema
        yield (), (f"expected an object schema at the root (type: object), got type: {got}; "
                   "wrap other values in a property")
        return
    yield from _walk(schema, (), 0)


# The keywords strict mode's subset of JSON Schema is written in, by the kind of value
# each takes. A schema using only these is checked here; one using any other keyword is
# checked by jsonschema's metaschema, the reference, loaded only then (it takes longer to
# import than `batchrun validate` takes to run otherwise).
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions"})
_SCHEMAS = frozenset({"items", "additionalProperties", "not"})
_SCHEMA_LISTS = frozenset({"anyOf", "oneOf", "allOf", "prefixItems"})
_STRINGS = frozenset({"description", "title", "pattern", "format", "$ref", "$schema", "$id",
                      "$comment", "$anchor"})
_NUMBERS = frozenset({"minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"})
_COUNTS = frozenset({"minItems", "maxItems", "minLength", "maxLength", "minProperties",
                     "maxProperties"})
_ANYTHING = frozenset({"const", "default", "examples", "enum", "required", "type",
                       "multipleOf"})
_KNOWN = (_SCHEMA_MAPS | _SCHEMAS | _SCHEMA_LISTS | _STRINGS | _NUMBERS | _COUNTS | _ANYTHING)


def not_json_schema(schema: Any) -> tuple[KeyPath, str] | None:
    """Where and why `schema` is not a valid JSON Schema (draft 2020-12), or None."""
    if not _uses_only_known_keywords(schema):
        return _metaschema_problem(schema)
    return _shape_problem(schema, ())


def _uses_only_known_keywords(node: Any) -> bool:
    if not isinstance(node, dict):
        return True          # a boolean schema, or what _shape_problem says is wrong
    return _KNOWN.issuperset(node) and all(
        _uses_only_known_keywords(sub) for key, value in node.items()
        for _, sub in _children(key, value, ()))


def _children(key: str, value: Any, at: KeyPath) -> list[tuple[KeyPath, Any]]:
    """The subschemas a keyword's value holds, with their paths."""
    if key in _SCHEMA_MAPS and isinstance(value, dict):
        return [((*at, name), sub) for name, sub in value.items()]
    if key in _SCHEMA_LISTS and isinstance(value, list):
        return [((*at, i), sub) for i, sub in enumerate(value)]
    return [(at, value)] if key in _SCHEMAS else []


def _shape_problem(node: Any, path: KeyPath) -> tuple[KeyPath, str] | None:
    """The first keyword of `node` (a schema using only _KNOWN keywords), or of a schema
    inside it, whose value is not what JSON Schema's metaschema allows there."""
    if isinstance(node, bool):
        return None
    if not isinstance(node, dict):
        return path, _invalid(f"{_shown(node)} is not of type 'object', 'boolean'")
    for key, value in node.items():
        at = (*path, key)
        problem = _keyword_problem(key, value, at)
        for sub_at, sub in _children(key, value, at):
            problem = problem or _shape_problem(sub, sub_at)
        if problem:
            return problem
    return None


def _keyword_problem(key: str, value: Any, at: KeyPath) -> tuple[KeyPath, str] | None:
    """What is wrong with one keyword's own value (its subschemas are checked apart)."""
    why = None
    if key == "type":
        return _type_problem(value, at)
    if key in _SCHEMA_MAPS and not isinstance(value, dict):
        why = f"{_shown(value)} is not of type 'object'"
    elif key in _SCHEMA_LISTS:
        why = (f"{_shown(value)} is not of type 'array'" if not isinstance(value, list)
               else "[] should be non-empty" if not value else None)
    elif key in _STRINGS and not isinstance(value, str):
        why = f"{_shown(value)} is not of type 'string'"
    elif key == "pattern":
        why = _regex_problem(value)
    elif key in _NUMBERS and not _is_number(value):
        why = f"{_shown(value)} is not of type 'number'"
    elif key == "multipleOf" and not (_is_number(value) and value > 0):
        why = f"{_shown(value)} is not a number greater than 0"
    elif key in _COUNTS and not (_is_integer(value) and value >= 0):
        why = f"{_shown(value)} is not a non-negative integer"
    elif key == "required" and not (isinstance(value, list)
                                    and all(isinstance(v, str) for v in value)
                                    and len(set(value)) == len(value)):
        why = f"{_shown(value)} is not a list of distinct strings"
    elif key in ("enum", "examples") and not isinstance(value, list):
        why = f"{_shown(value)} is not of type 'array'"
    return (at, _invalid(why)) if why else None


def _type_problem(value: Any, at: KeyPath) -> tuple[KeyPath, str] | None:
    if isinstance(value, str):
        if value in TYPES:
            return None
        close = difflib.get_close_matches(value, TYPES, n=1)
        return at, (f"{value!r} is not a JSON Schema type; "
                    + (f"did you mean {close[0]!r}? " if close else "")
                    + f"expected one of: {', '.join(TYPES)}")
    if isinstance(value, list) and value and len(set(map(str, value))) == len(value):
        for i, item in enumerate(value):
            problem = _type_problem(item, (*at, i)) if isinstance(item, str) else \
                ((*at, i), _invalid(f"{_shown(item)} is not of type 'string'"))
            if problem:
                return problem
        return None
    return at, _invalid(f"{_shown(value)} is not a type name nor a non-empty list of "
                        "distinct type names")


def _metaschema_problem(schema: Any) -> tuple[KeyPath, str] | None:
    import jsonschema  # the reference, for keywords beyond strict mode's subset
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        if exc.path and exc.path[-1] == "type" and isinstance(exc.instance, str):
            return _type_problem(exc.instance, tuple(exc.path))
        return tuple(exc.path), _invalid(exc.message)
    return None


def _invalid(why: str) -> str:
    return f"not a valid JSON Schema: {why}"


def _shown(value: Any) -> str:
    return json.dumps(value) if not isinstance(value, str) else repr(value)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _is_integer(value: Any) -> bool:   # JSON Schema counts 2.0 as an integer
    return _is_number(value) and float(value).is_integer()


def _regex_problem(value: str) -> str | None:
    try:
        re.compile(value)
    except re.error as exc:
        return f"{value!r} is not a 'regex' ({exc})"
    return None


def _walk(node: Any, path: KeyPath, depth: int) -> Iterator[tuple[KeyPath, str]]:
    if not isinstance(node, dict):
        return
    if depth > MAX_NESTING:
        yield path, f"nested more than {MAX_NESTING} levels deep"
        return
    for keyword in sorted(UNSUPPORTED_KEYWORDS & set(node)):
        yield (*path, keyword), f"strict mode does not support {keyword!r}"
    if node.get("type") == "object" or "properties" in node:
        properties = node.get("properties", {})
        if "additionalProperties" not in node:
            yield path, "strict mode needs additionalProperties: false on every object; add it"
        elif node["additionalProperties"] is not False:
            yield (*path, "additionalProperties"), ("strict mode needs additionalProperties: "
                                                    "false on every object, got "
                                                    + json.dumps(node["additionalProperties"]))
        missing = [name for name in properties if name not in node.get("required", [])]
        if missing:
            yield (*path, "required"), (f"strict mode needs every property listed as required; "
                                        f"missing: {', '.join(missing)} (make optional fields "
                                        f"nullable instead: type: [string, 'null'])")
        for name, sub in properties.items():
            yield from _walk(sub, (*path, "properties", name), depth + 1)
    for key in ("items", "$defs", "definitions", "anyOf", "prefixItems"):
        value = node.get(key)
        if isinstance(value, dict) and key in ("$defs", "definitions"):
            for name, sub in value.items():
                yield from _walk(sub, (*path, key, name), depth + 1)
        elif isinstance(value, dict):
            yield from _walk(value, (*path, key), depth + 1)
        elif isinstance(value, list):
            for i, sub in enumerate(value):
                yield from _walk(sub, (*path, key, i), depth + 1)
