"""A rendered request as Anthropic's Messages API body, and its batch line.

The job spec is the same as for OpenAI; it maps onto `POST /v1/messages`:

    prompt.system  → `system` (a string)
    prompt.user    → `messages: [{"role": "user", "content": …}]`
    model, params  → as written (`max_tokens` is required by the API; jobs.py checks)
    output schema  → `output_config: {"format": {"type": "json_schema", "schema": …}}`,
                     Anthropic's structured outputs (generally available; no beta header)

The request key is computed on `{"endpoint": "/v1/messages", "body": …}`, so the same
prompt sent to OpenAI and to Anthropic is two requests. A batch line is what
`POST /v1/messages/batches` takes in its `requests` list: `{"custom_id", "params"}`.

Structured outputs accept a subset of JSON Schema (docs, "Structured outputs", JSON
Schema limitations): no numeric bounds, string lengths or array bounds beyond `minItems`
0/1, `anyOf` rather than `oneOf`, a few string formats. Like the SDK's own
`transform_schema`, the rest is moved into the node's description, where the model
reads it; answers are checked against the schema that was sent.
"""

from __future__ import annotations

import copy
import json
from typing import Any

ENDPOINT = "/v1/messages"
STRING_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname",
                            "uri", "ipv4", "ipv6", "uuid"})
_UNSUPPORTED = {
    "integer": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
    "string": ("minLength", "maxLength"),
    "array": ("maxItems", "uniqueItems", "contains", "prefixItems", "minContains",
              "maxContains"),
    "object": ("patternProperties", "minProperties", "maxProperties", "propertyNames"),
}
_NESTED = ("properties", "$defs", "definitions")
_LISTS = ("anyOf", "allOf", "prefixItems")


def constant_part(model: str, params: dict[str, Any], schema: dict | None) -> dict[str, Any]:
    """What every request of a job sends alike: model, params, the output format."""
    body: dict[str, Any] = {"model": model, **params}
    if schema is not None:
        config = dict(body.get("output_config") or {})
        config["format"] = {"type": "json_schema", "schema": structured_schema(schema)}
        body["output_config"] = config
    return body


def variable_part(system: str | None, user: str) -> dict[str, Any]:
    """What differs per point: the system prompt (when it reads the point) and the message."""
    parts: dict[str, Any] = {"messages": [{"role": "user", "content": user}]}
    if system is not None:
        parts["system"] = system
    return parts


def structured_schema(schema: dict) -> dict:
    """The schema as Anthropic's structured outputs take it (module doc)."""
    out = copy.deepcopy(schema)
    _transform(out)
    return out


def _transform(node: Any) -> None:
    if isinstance(node, list):
        for item in node:
            _transform(item)
        return
    if not isinstance(node, dict):
        return
    if "oneOf" in node and "anyOf" not in node:
        node["anyOf"] = node.pop("oneOf")
    kinds = node.get("type")
    moved: dict[str, Any] = {}
    for kind in kinds if isinstance(kinds, list) else [kinds]:
        for key in _UNSUPPORTED.get(kind, ()) if isinstance(kind, str) else ():
            if key in node:
                moved[key] = node.pop(key)
    if isinstance(node.get("minItems"), int) and node["minItems"] > 1:
        moved["minItems"] = node.pop("minItems")
    if isinstance(node.get("format"), str) and node["format"] not in STRING_FORMATS:
        moved["format"] = node.pop("format")
    if moved:
        said = ", ".join(f"{key}: {json.dumps(value)}" for key, value in moved.items())
        node["description"] = (f"{node['description']}\n\n" if node.get("description")
                               else "") + "{" + said + "}"
    for key in _NESTED:
        if isinstance(node.get(key), dict):
            for sub in node[key].values():
                _transform(sub)
    for key in ("items", "additionalProperties", "not"):
        _transform(node.get(key))
    for key in _LISTS:
        _transform(node.get(key))


def expected_schema(line: dict) -> dict | None:
    """The output schema a batch line asked for, if any."""
    fmt = ((line.get("params") or {}).get("output_config") or {}).get("format") or {}
    return fmt.get("schema") if fmt.get("type") == "json_schema" else None
