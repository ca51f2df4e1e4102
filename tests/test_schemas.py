"""Output schemas are checked against JSON Schema's own rules without loading jsonschema for
strict mode's subset of keywords; jsonschema's metaschema stays the reference, and decides
whenever a schema uses any other keyword."""

from __future__ import annotations

import jsonschema
import pytest

from runner.schemas import not_json_schema, strict_mode_problems

SCHEMAS = [
    {"type": "object", "properties": {"a": {"type": "string"}}},
    {"type": ["string", "null"]},
    {"type": "strin"},
    {"type": []},
    {"type": ["string", "string"]},
    {"type": ["string", 3]},
    {"type": 7},
    {"properties": []},
    {"properties": {"a": 3}},
    {"properties": {"a": True}},
    {"items": {"type": "integer"}, "minItems": 1, "maxItems": 3},
    {"items": [{"type": "integer"}]},
    {"minItems": -1},
    {"minItems": 2.0},
    {"minItems": 2.5},
    {"maxLength": True},
    {"minimum": "3"},
    {"maximum": 3.5, "exclusiveMinimum": 0},
    {"multipleOf": 0},
    {"multipleOf": 0.5},
    {"required": ["a", "a"]},
    {"required": "a"},
    {"required": ["a", 1]},
    {"enum": "red"},
    {"enum": ["red", 1, None]},
    {"const": {"any": "thing"}},
    {"anyOf": []},
    {"anyOf": {"type": "string"}},
    {"anyOf": [{"type": "string"}, {"type": "nul"}]},
    {"description": 5},
    {"pattern": "^[a-z]+$"},
    {"pattern": "(("},
    {"$defs": {"x": {"type": "string"}}, "$ref": "#/$defs/x"},
    {"$ref": 5},
    {"additionalProperties": "no"},
    {"additionalProperties": False, "title": "t", "examples": [1]},
    {"not": {"type": "string"}},
    {"uniqueItems": "yes"},            # beyond the subset: jsonschema decides
    {"x-custom": 1, "type": "string"},  # an unknown keyword: jsonschema decides (it ignores it)
    {"type": "object", "properties": {"a": {"dependentRequired": {"b": 1}}}},
    [],
    "string",
]


@pytest.mark.parametrize("schema", SCHEMAS, ids=repr)
def test_the_check_agrees_with_jsonschemas_metaschema(schema):
    try:
        jsonschema.Draft202012Validator.check_schema(schema)
        reference = None
    except jsonschema.SchemaError as exc:
        reference = tuple(exc.path)
    problem = not_json_schema(schema)
    assert (problem is None) == (reference is None), problem
    if problem is not None:
        assert problem[1].startswith(("not a valid JSON Schema: ", "'")), problem


def test_a_misspelt_type_names_the_likely_one():
    path, why = not_json_schema({"properties": {"lang": {"type": "strin"}}})
    assert path == ("properties", "lang", "type")
    assert why.startswith("'strin' is not a JSON Schema type; did you mean 'string'?")


def test_the_subset_is_checked_without_loading_jsonschema():
    import subprocess
    import sys
    code = ("import sys; from runner.schemas import strict_mode_problems, from_fields; "
            "list(strict_mode_problems(from_fields({'a': {'type': 'strin'}}))); "
            "print('jsonschema' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip() == "False"


def test_strict_mode_rules_come_after_json_schemas_own():
    assert list(strict_mode_problems({"type": "object", "properties": {"a": {"type": "str"}}})) \
        == [(("properties", "a", "type"), "'str' is not a JSON Schema type; did you mean "
             "'string'? expected one of: array, boolean, integer, null, number, object, "
             "string")]
    assert list(strict_mode_problems({"type": "object", "properties": {}})) == [
        ((), "strict mode needs additionalProperties: false on every object; add it")]
