"""Editors validate and complete specs with schemas/job.schema.json: it must be current."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import yaml

from runner.spec import job_schema
from runner.starter import schema_text

ROOT = Path(__file__).resolve().parent.parent
SCHEMA_COMMENT = "# yaml-language-server: $schema=../schemas/job.schema.json"


EXPORTED = ("schemas/job.schema.json", "runner/data/project/schemas/job.schema.json")


def test_the_exported_schema_is_generated_from_the_spec_models():
    # the repository's copy, and the one `batchrun init` writes (shipped in the package)
    for rel in EXPORTED:
        exported = (ROOT / rel).read_text(encoding="utf-8")
        assert exported == schema_text(), (
            f"{rel} is stale; regenerate both copies with\n"
            "  python -c 'from runner.starter import schema_text; "
            f"[open(p, \"w\").write(schema_text()) for p in {EXPORTED!r}]'")


def test_the_schema_is_valid_json_schema_and_forbids_unknown_keys():
    schema = job_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    spec = yaml.safe_load((ROOT / "jobs" / "tags.yaml").read_text())
    assert not list(validator.iter_errors(spec))
    assert list(validator.iter_errors({**spec, "temprature": 0}))
    assert not list(validator.iter_errors({**spec, "batch": {"max_bytes": "150MB"}}))


def test_every_example_spec_points_editors_at_the_schema():
    for spec in sorted((ROOT / "jobs").glob("*.yaml")):
        first = spec.read_text(encoding="utf-8").splitlines()[0]
        assert first == SCHEMA_COMMENT, f"{spec.name} should start with the schema comment"
        assert not list(jsonschema.Draft202012Validator(job_schema()).iter_errors(
            yaml.safe_load(spec.read_text())))


def test_the_schema_documents_every_key():
    def walk(node, path):
        for name, prop in (node.get("properties") or {}).items():
            assert prop.get("description"), f"{path}{name} has no description"
    schema = job_schema()
    walk(schema, "")
    for name, definition in schema["$defs"].items():
        walk(definition, f"{name}.")
    json.dumps(schema)
