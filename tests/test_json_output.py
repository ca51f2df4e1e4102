"""--json output is a contract: every command's output validates against its documented
schema in schemas/output/, and exit codes are the same as without --json."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from runner.emulator import Faults

JOB = "jobs/tags.yaml"
SCHEMAS = Path(__file__).resolve().parent.parent / "schemas" / "output"


def check(name: str, output: str) -> dict:
    data = json.loads(output)
    schema = json.loads((SCHEMAS / f"{name}.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    jsonschema.validate(data, schema)
    return data


def test_every_command_prints_json_that_matches_its_schema(http_project):
    http_project.seed(30)
    http_project.emulator.emulator.faults = Faults(seed=2, request_failure_rate=0.2)
    run = http_project.run
    check("validate", run("validate", "--json").stdout)
    check("plan", run("plan", JOB, "--json").stdout)
    prepared = check("prepare", run("prepare", JOB, "--json").stdout)
    assert prepared["shards"]
    submitted = check("submit", run("submit", JOB, "--json").stdout)
    assert submitted["submitted"] == len(prepared["shards"])
    check("status", run("status", JOB, "--json").stdout)
    check("collect", run("collect", JOB, "--json").stdout)
    applied = check("apply", run("apply", JOB, "--json", expect=None).stdout)
    assert applied["jobs"]["tags"]["matched"] == 30
    check("costs", run("costs", "--json").stdout)
    for by in ("batch", "model", "day"):
        check("costs", run("costs", "--by", by, "--json").stdout)
    check("show", run("show", "tags", "--limit", "2", "--json").stdout)
    check("show", run("show", "tags", "--failed", "--json").stdout)
    check("report", run("report", "--json").stdout)
    check("cancel", run("cancel", JOB, "--json").stdout)
    assert check("gc", run("gc", "--dry-run", "--json").stdout)["dry_run"] is True
    assert check("gc", run("gc", "--json").stdout)["files"] > 0
    check("repair", run("repair", JOB, "--json").stdout)


def test_try_render_and_the_new_plan_fields_print_json_that_matches_their_schemas(
        http_project):
    http_project.seed(12)
    run = http_project.run
    check("render", run("render", "tags", "--sample", "2", "--json").stdout)
    tried = check("try", run("try", "tags", "--json").stdout)
    assert tried["kept"] == 5
    http_project.emulator.emulator.faults = Faults(invalid_json_rate=1.0)
    failing = check("try", run("try", "tags", "--sample", "7", "--json", expect=3).stdout)
    assert {p["status"] for p in failing["points"]} == {"cached", "invalid"}
    http_project.emulator.emulator.faults = Faults()
    plan = check("plan", run("plan", JOB, "--points", "--json").stdout)
    assert plan["jobs"]["tags"]["cached"] == 5 and plan["jobs"]["tags"]["points"]["complete"]
    run("apply", JOB)
    costs = check("costs", run("costs", "--json").stdout)
    assert costs["synchronous"]["total"]["calls"] == 7
    for by in ("batch", "model", "day"):
        check("costs", run("costs", "--by", by, "--json").stdout)
    http_project.edit(JOB, "key: region", "key: regoin")
    assert check("plan", run("plan", JOB, "--json").stdout)["warnings"]
    assert check("apply", run("apply", JOB, "--json").stdout)["warnings"]
    assert check("validate", run("validate", "--qdrant", "--json", expect=1).stdout)["warnings"]


def test_errors_in_json_name_the_file_line_and_key_with_exit_code_1(project):
    project.edit(JOB, "max_attempts: 3", "max_attempts: many")
    for command in ("validate", "plan", "apply"):
        text = project.run(command, expect=1)
        data = check("error", project.run(command, "--json", expect=1).stdout)
        assert data["error"]["file"] == "jobs/tags.yaml"
        assert data["error"]["key"] == "batch.max_attempts"
        assert data["error"]["line"] == int(text.stderr.split(":")[2])


@pytest.mark.parametrize("args,code", [(("plan", JOB, "--detailed-exitcode"), 2),
                                        (("plan", JOB), 0)])
def test_json_keeps_the_exit_codes(project, args, code):
    project.seed(5)
    assert project.run(*args, expect=code).exit_code == code
    assert project.run(*args, "--json", expect=code).exit_code == code
