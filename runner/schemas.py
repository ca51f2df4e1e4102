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
from collections.abc import Iterator
from typing import Any

import jsonschema

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
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
    except jsonschema.SchemaError as exc:
        yield tuple(exc.path), _schema_error(exc)
        return
    if not isinstance(schema, dict) or schema.get("type") != "object":
        got = schema.get("type") if isinstance(schema, dict) else schema
        yield (), (f"expected an object schema at the root (type: object), got type: {got}; "
                   "wrap other values in a property")
        return
    yield from _walk(schema, (), 0)


def _schema_error(exc: jsonschema.SchemaError) -> str:
    if exc.path and exc.path[-1] == "type" and isinstance(exc.instance, str):
        close = difflib.get_close_matches(exc.instance, TYPES, n=1)
        return (f"{exc.instance!r} is not a JSON Schema type; "
                + (f"did you mean {close[0]!r}? " if close else "")
                + f"expected one of: {', '.join(TYPES)}")
    return f"not a valid JSON Schema: {exc.message}"


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
