"""`batchrun render` prints the exact batch line apply would send for a point, and the
points `render` and `try` look at are named or a deterministic sample."""

from __future__ import annotations

import json

from runner.keys import request_key

JOB = "jobs/tags.yaml"


def shard_lines(project) -> dict[str, bytes]:
    """custom_id → the exact line of every shard `prepare` packed."""
    lines = {}
    for shard in (project.state / "artifacts" / "shards").glob("*.jsonl"):
        for line in shard.read_bytes().splitlines(keepends=True):
            lines[json.loads(line)["custom_id"]] = line
    return lines


def test_render_prints_byte_for_byte_the_line_apply_packs(project):
    project.seed(12)
    rendered = project.run("render", "tags", "--id", "3", "--id", "11")
    project.run("prepare", JOB)
    packed = shard_lines(project)
    lines = rendered.stdout_bytes.splitlines(keepends=True)
    assert len(lines) == 2 and all(packed[json.loads(line)["custom_id"]] == line
                                   for line in lines)
    first = json.loads(lines[0])
    assert first["custom_id"] == request_key(first["url"], first["body"])
    notes = rendered.stderr.splitlines()
    assert notes[0].startswith(f"# point 3: custom_id {first['custom_id']}, POST "
                               "/v1/chat/completions, ")
    assert "input tokens (approximate)" in notes[0]   # a json_schema format: approximate


def test_render_json_gives_the_line_body_key_and_tokens(project):
    project.seed(5)
    data = project.run_json("render", JOB, "--id", "2")
    (request,) = data["requests"]
    assert request["id"] == 2 and request["endpoint"] == "/v1/chat/completions"
    assert json.loads(request["line"])["body"] == request["body"]
    assert request["custom_id"] == request_key("/v1/chat/completions", request["body"])
    assert request["input_tokens"] > 0 and request["input_tokens_exact"] is False
    assert request["output_tokens_max"] == 200 and request["bytes"] == len(
        request["line"].encode())


def test_plain_chat_without_a_schema_counts_tokens_exactly(project):
    project.seed(3)
    spec = project.root.joinpath(JOB).read_text()
    fields = spec[spec.index("  fields:                       # becomes"):spec.index("batch:")]
    project.edit(JOB, fields, "\n")            # no output fields: the answer is text
    (request,) = project.run_json("render", JOB, "--id", "1")["requests"]
    assert "response_format" not in request["body"] and request["input_tokens_exact"]


def test_a_sample_is_the_same_points_on_every_run_whatever_their_payload(project):
    project.seed(40)
    first = [r["id"] for r in project.run_json("render", "tags", "--sample", "4")["requests"]]
    assert len(set(first)) == 4
    with project.qdrant() as client:
        client.set_payload("videos", {"title": "changed"}, first)
    again = [r["id"] for r in project.run_json("render", "tags", "--sample", "4")["requests"]]
    assert again == first
    one = project.run_json("render", "tags")["requests"]
    assert [r["id"] for r in one] == first[:1]    # the first of any larger sample


def test_a_point_the_job_does_not_select_is_an_error_naming_it(project):
    project.seed(130)                      # 121-130 are from GB... and CA: selected
    result = project.run("render", "tags", "--id", "500", expect=1)
    assert "tags does not select point 500 of 'videos'" in result.stderr
    result = project.run("render", "nope", expect=1)
    assert "no job named 'nope'" in result.stderr and "jobs: tags" in result.stderr


def test_a_point_its_template_fails_on_says_where(project):
    project.seed(3)
    project.edit("prompts/tags.user.j2", "Title: {{ title }}", "Title: {{ title.upper(1) }}")
    result = project.run("render", "tags", "--id", "1", expect=1)
    assert result.stderr.startswith("Error: prompts/tags.user.j2:1: point 1: ")
