"""Validating answers against the output schema they were requested with — fast.

Every collected line is checked, so this runs millions of times on a large job. The
schemas batchrun sends are strict-mode schemas: closed objects, required properties,
strings, enums, numbers, arrays. `compile_check` turns such a schema into plain Python
closures (a few µs a line, against ~30 µs for jsonschema); anything it does not know
makes it step aside. jsonschema stays the reference: it decides whenever the fast check
cannot, and it alone words the error when an answer is invalid, so a fast check can only
ever make a valid answer cheaper to accept.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import jsonschema

Check = Callable[[Any], bool]

_ANNOTATIONS = {"title", "description", "default", "examples", "$schema", "$id", "$comment",
                "format", "deprecated", "readOnly", "writeOnly"}
_TYPES: dict[str, Check] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
    "integer": lambda v: (isinstance(v, int) and not isinstance(v, bool))
    or (isinstance(v, float) and v.is_integer()),
}


_KEYWORDS = {"type", "enum", "const", "properties", "required", "additionalProperties", "items",
             "minItems", "maxItems", "minLength", "maxLength", "minimum", "maximum",
             "exclusiveMinimum", "exclusiveMaximum", "pattern", "anyOf", "$ref"}


class Unsupported(Exception):
    """The schema uses something the fast check does not implement."""


class AnswerValidator:
    """jsonschema's validator interface (`iter_errors`), with the fast check in front."""

    def __init__(self, schema: dict):
        self.reference = jsonschema.Draft202012Validator(schema)
        self.fast = compile_check(schema)

    def iter_errors(self, value: Any) -> Iterator[jsonschema.ValidationError]:
        if self.fast is not None and self.fast(value):
            return iter(())
        return self.reference.iter_errors(value)


def compile_check(schema: Any) -> Check | None:
    """A yes/no check equivalent to jsonschema for `schema`, or None if it can't say."""
    try:
        return _Compiler(schema).compile(schema)
    except (Unsupported, RecursionError):
        return None


class _Compiler:
    def __init__(self, root: Any):
        self.root = root
        self.refs: dict[str, Check] = {}

    def compile(self, schema: Any) -> Check:
        if schema is True or schema == {}:
            return lambda v: True
        if not isinstance(schema, dict):
            raise Unsupported(schema)
        checks: list[Check] = []
        for keyword, value in schema.items():
            if keyword in _ANNOTATIONS or keyword in ("$defs", "definitions"):
                continue
            if keyword not in _KEYWORDS:
                raise Unsupported(keyword)
            checks.append(getattr(self, "_" + keyword.lstrip("$"))(value, schema))
        if len(checks) == 1:
            return checks[0]
        return lambda v: all(check(v) for check in checks)

    def _type(self, value: Any, _: dict) -> Check:
        names = [value] if isinstance(value, str) else value
        if not isinstance(names, list) or any(n not in _TYPES for n in names):
            raise Unsupported(value)
        tests = [_TYPES[n] for n in names]
        return tests[0] if len(tests) == 1 else (lambda v: any(t(v) for t in tests))

    def _enum(self, value: Any, _: dict) -> Check:
        if not isinstance(value, list) or not all(isinstance(x, str) for x in value):
            raise Unsupported(value)     # 1 == True in Python but not in JSON Schema
        allowed = frozenset(value)
        return lambda v: isinstance(v, str) and v in allowed

    def _const(self, value: Any, _: dict) -> Check:
        if not isinstance(value, str):
            raise Unsupported(value)
        return lambda v: isinstance(v, str) and v == value

    def _properties(self, value: Any, schema: dict) -> Check:
        checks = {name: self.compile(sub) for name, sub in value.items()}
        return lambda v: not isinstance(v, dict) or all(
            check(v[name]) for name, check in checks.items() if name in v)

    def _required(self, value: Any, _: dict) -> Check:
        names = tuple(value)
        return lambda v: not isinstance(v, dict) or all(name in v for name in names)

    def _additionalProperties(self, value: Any, schema: dict) -> Check:
        if value is not False or "patternProperties" in schema:
            raise Unsupported(value)
        allowed = frozenset(schema.get("properties", {}))
        return lambda v: not isinstance(v, dict) or allowed.issuperset(v)

    def _items(self, value: Any, _: dict) -> Check:
        check = self.compile(value)
        return lambda v: not isinstance(v, list) or all(check(x) for x in v)

    def _bound(self, value: Any, test: Callable[[Any, Any], bool], kind: Check) -> Check:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise Unsupported(value)
        return lambda v: not kind(v) or test(v, value)

    def _minItems(self, value: Any, _: dict) -> Check:
        return self._bound(value, lambda v, n: len(v) >= n, _TYPES["array"])

    def _maxItems(self, value: Any, _: dict) -> Check:
        return self._bound(value, lambda v, n: len(v) <= n, _TYPES["array"])

    def _minLength(self, value: Any, _: dict) -> Check:
        return self._bound(value, lambda v, n: len(v) >= n, _TYPES["string"])

    def _maxLength(self, value: Any, _: dict) -> Check:
        return self._bound(value, lambda v, n: len(v) <= n, _TYPES["string"])

    def _minimum(self, value: Any, _: dict) -> Check:
        return self._bound(value, lambda v, n: v >= n, _TYPES["number"])

    def _maximum(self, value: Any, _: dict) -> Check:
        return self._bound(value, lambda v, n: v <= n, _TYPES["number"])

    def _exclusiveMinimum(self, value: Any, _: dict) -> Check:
        return self._bound(value, lambda v, n: v > n, _TYPES["number"])

    def _exclusiveMaximum(self, value: Any, _: dict) -> Check:
        return self._bound(value, lambda v, n: v < n, _TYPES["number"])

    def _pattern(self, value: Any, _: dict) -> Check:
        try:
            regex = re.compile(value)
        except (re.error, TypeError):
            raise Unsupported(value) from None
        return lambda v: not isinstance(v, str) or regex.search(v) is not None

    def _anyOf(self, value: Any, _: dict) -> Check:
        checks = [self.compile(sub) for sub in value]
        return lambda v: any(check(v) for check in checks)

    def _ref(self, value: Any, _: dict) -> Check:
        match = re.fullmatch(r"#/(\$defs|definitions)/([^/~]+)", value) \
            if isinstance(value, str) else None
        if match is None:
            raise Unsupported(value)
        if value not in self.refs:
            target = self.root.get(match.group(1), {}).get(match.group(2))
            if target is None:
                raise Unsupported(value)
            self.refs[value] = lambda v: True           # placeholder while compiling a cycle
            compiled = self.compile(target)
            self.refs[value] = compiled
        return lambda v: self.refs[value](v)
