"""The fast answer check agrees with jsonschema on every instance, valid or not; where it
cannot decide, jsonschema does."""

from __future__ import annotations

import copy
import random

import jsonschema
import pytest

from runner.answers import AnswerValidator, compile_check
from runner.emulator.content import Prompt, instance
from runner.schemas import from_fields

TAGS = from_fields({
    "topics": {"type": "array", "items": {"type": "string"}, "maxItems": 8},
    "category": {"type": "string", "enum": ["Music", "Gaming", "News", "Other"]},
    "language": {"type": "string", "pattern": "^[a-z]{2}$"},
})
RICH = {
    "type": "object", "additionalProperties": False,
    "required": ["score", "count", "note", "tags", "kind", "nested"],
    "properties": {
        "score": {"type": "number", "minimum": 0, "exclusiveMaximum": 1},
        "count": {"type": "integer", "minimum": 1, "maximum": 10},
        "note": {"type": ["string", "null"], "maxLength": 20},
        "tags": {"type": "array", "items": {"$ref": "#/$defs/tag"}, "minItems": 1},
        "kind": {"anyOf": [{"const": "a"}, {"type": "boolean"}]},
        "nested": {"type": "object", "additionalProperties": False, "required": ["x"],
                   "properties": {"x": {"type": "string", "minLength": 2}}},
    },
    "$defs": {"tag": {"type": "string", "enum": ["red", "green"]}},
}
TEXTS = ["Live concert in Berlin, music", "Le match de la semaine", "x", "日本語のテキスト"]


def mutations(value, rng):
    """Plausible wrong answers: wrong types, extra and missing keys, out-of-range values."""
    yield None
    yield "not an object"
    if not isinstance(value, dict):
        return
    for key in value:
        broken = copy.deepcopy(value)
        del broken[key]
        yield broken
        for wrong in (None, 1, 1.5, True, "s", [], {}, ["x"] * 12, -1, 11, "toolongstring" * 3):
            broken = copy.deepcopy(value)
            broken[key] = wrong
            yield broken
    yield {**value, "extra": 1}


@pytest.mark.parametrize("schema", [TAGS, RICH], ids=["tags", "rich"])
def test_the_fast_check_agrees_with_jsonschema(schema):
    reference = jsonschema.Draft202012Validator(schema)
    fast = compile_check(schema)
    assert fast is not None
    rng = random.Random(7)
    seen = {True: 0, False: 0}
    for text in TEXTS:
        valid = instance(schema, Prompt(user=text, full=text))
        for candidate in [valid, *mutations(valid, rng)]:
            expected = reference.is_valid(candidate)
            assert fast(candidate) == expected, candidate
            seen[expected] += 1
    assert seen[True] and seen[False] > 20


def test_schemas_beyond_the_fast_subset_fall_back_to_jsonschema():
    schema = {"type": "object", "properties": {"n": {"enum": [1, 2]}}, "required": ["n"]}
    assert compile_check(schema) is None
    validator = AnswerValidator(schema)
    assert not list(validator.iter_errors({"n": 1}))
    assert list(validator.iter_errors({"n": True}))   # True is not 1 in JSON Schema


def test_an_invalid_answer_gets_jsonschemas_own_message():
    errors = list(AnswerValidator(TAGS).iter_errors({"topics": [], "category": "Sport",
                                                      "language": "en"}))
    assert [e.message for e in errors] == [
        "'Sport' is not one of ['Music', 'Gaming', 'News', 'Other']"]
