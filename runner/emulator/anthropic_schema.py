"""The JSON Schema subset Anthropic's structured outputs accept (docs: "JSON Schema
limitations"; the SDK's own `transform_schema` strips the rest into descriptions).

Supported: the basic types, `enum` of primitives, `const`, `anyOf`, `allOf`, local
`$ref` / `$defs` / `definitions`, `required`, `additionalProperties: false` (required on
every object), the string formats below, `minItems` of 0 or 1. Not supported: recursive
schemas, numeric bounds (`minimum`, `maximum`, `exclusiveMinimum`, `exclusiveMaximum`,
`multipleOf`), string lengths, array bounds beyond `minItems` 0/1, external `$ref`.

An unsupported schema is a 400 whose message names the parameter and the rule, worded
like the ones the real API was seen to send:
    output_config.format.schema: For 'integer' type, property 'minimum' is not supported
    output_config.format.schema: For 'object' type, 'additionalProperties' must be
    explicitly set to false
"""

from __future__ import annotations

from typing import Any

from .anthropic_errors import AnthropicError, invalid

STRING_FORMATS = frozenset({"date-time", "time", "date", "duration", "email", "hostname",
                            "uri", "ipv4", "ipv6", "uuid"})
_UNSUPPORTED = {
    "integer": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
    "number": ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum", "multipleOf"),
    "string": ("minLength", "maxLength"),
    "array": ("maxItems", "uniqueItems", "contains", "prefixItems"),
    "object": ("patternProperties", "minProperties", "maxProperties", "propertyNames"),
}
_TYPES = ("object", "array", "string", "integer", "number", "boolean", "null")


def check_output_schema(schema: Any, param: str) -> None:
    """Raise the API's 400 if `schema` leaves the supported subset; `param` names it
    (`output_config.format.schema`, `output_format.schema`, `tools.0.input_schema`)."""
    if not isinstance(schema, dict):
        raise invalid(param, "Input should be a valid dictionary")
    _Checker(schema, param).check(schema, ())


class _Checker:
    def __init__(self, root: dict[str, Any], param: str):
        self.root = root
        self.param = param

    def fail(self, message: str) -> AnthropicError:
        return invalid(self.param, message)

    def check(self, node: Any, refs: tuple[str, ...]) -> None:
        if isinstance(node, bool):
            return
        if not isinstance(node, dict):
            raise self.fail(f"Schema must be an object, not {type(node).__name__}")
        for key in ("$defs", "definitions"):
            for sub in (node.get(key) or {}).values():
                self.check(sub, refs)
        if "$ref" in node:
            self.check(self.resolve(node["$ref"], refs), (*refs, node["$ref"]))
            return
        if "enum" in node and any(isinstance(v, (dict, list)) for v in node["enum"]):
            raise self.fail("'enum' values must be strings, numbers, booleans or null")
        for key in ("anyOf", "allOf"):
            for sub in node.get(key) or ():
                self.check(sub, refs)
        if "oneOf" in node:
            raise self.fail("'oneOf' is not supported; use 'anyOf'")
        kinds = node.get("type")
        for kind in kinds if isinstance(kinds, list) else [kinds]:
            if kind is None:
                continue
            if kind not in _TYPES:
                raise self.fail(f"Type '{kind}' is not supported")
            self.check_kind(node, kind, refs)

    def check_kind(self, node: dict[str, Any], kind: str, refs: tuple[str, ...]) -> None:
        for key in _UNSUPPORTED.get(kind, ()):
            if key in node:
                raise self.fail(f"For '{kind}' type, property '{key}' is not supported")
        if kind == "object":
            extra = node.get("additionalProperties", None)
            if "additionalProperties" not in node:
                raise self.fail("For 'object' type, 'additionalProperties' must be "
                                "explicitly set to false")
            if extra is not False:
                raise self.fail("For 'object' type, 'additionalProperties: true' is not "
                                "supported. Please set 'additionalProperties' to false")
            for sub in (node.get("properties") or {}).values():
                self.check(sub, refs)
        elif kind == "array":
            if node.get("minItems", 0) not in (0, 1):
                raise self.fail("For 'array' type, 'minItems' values other than 0 or 1 are "
                                "not supported")
            if "items" in node:
                self.check(node["items"], refs)
        elif kind == "string" and node.get("format") not in (None, *STRING_FORMATS):
            raise self.fail(f"For 'string' type, format '{node['format']}' is not supported; "
                            f"supported formats: {', '.join(sorted(STRING_FORMATS))}")

    def resolve(self, ref: Any, refs: tuple[str, ...]) -> Any:
        if not isinstance(ref, str) or not ref.startswith("#"):
            raise self.fail(f"External '$ref' is not supported: {ref!r}")
        if ref in refs:
            raise self.fail(f"Recursive schemas are not supported ('$ref': {ref!r})")
        node: Any = self.root
        for part in ref[1:].strip("/").split("/"):
            if not part:
                continue
            part = part.replace("~1", "/").replace("~0", "~")
            if not isinstance(node, dict) or part not in node:
                raise self.fail(f"'$ref' {ref!r} does not resolve within the schema")
            node = node[part]
        return node
