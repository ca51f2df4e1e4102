"""`batchrun validate` catches, offline, every problem the Batch API would reject a file for."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner import batchfile
from runner.batchfile import check_file

REAL = Path(__file__).parent / "data" / "openai-batch-real"


def request(custom_id="r-1", *, method="POST", url="/v1/chat/completions", **body):
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}], **body}
    return {"custom_id": custom_id, "method": method, "url": url, "body": body}


def write(tmp_path: Path, *lines, name="batch.jsonl") -> Path:
    path = tmp_path / name
    path.write_bytes(b"".join(
        line if isinstance(line, bytes) else (json.dumps(line) + "\n").encode()
        for line in lines))
    return path


def only_problem(path: Path):
    report = check_file(path)
    assert report.problem_count == 1, [str(p) for p in report.problems]
    [problem] = report.problems
    return problem


def test_a_good_input_file_has_no_problems_and_a_summary(tmp_path):
    path = write(tmp_path, request("a"), request("b"))
    report = check_file(path)
    assert report.ok and report.problems == ()
    assert (report.summary.kind, report.summary.lines, report.summary.endpoint,
            report.summary.model) == ("input", 2, "/v1/chat/completions", "gpt-4o-mini")
    assert report.summary.bytes == path.stat().st_size


def test_invalid_json_is_reported_with_its_position(tmp_path):
    problem = only_problem(write(tmp_path, request("a"), b'{"custom_id": "b",,}\n'))
    assert (problem.where.line, problem.message) == (
        2, "invalid JSON: Expecting property name enclosed in double quotes at char 18")
    assert str(problem) == f"{tmp_path / 'batch.jsonl'}:2: {problem.message}"


def test_a_line_that_is_not_an_object_is_reported(tmp_path):
    problem = only_problem(write(tmp_path, request("a"), [1, 2]))
    assert problem.message == "expected a JSON object, got list"


def test_non_utf8_bytes_are_reported(tmp_path):
    problem = only_problem(write(tmp_path, request("a"), b'{"custom_id": "\xe9"}\n'))
    assert (problem.where.line, problem.message) == (2, "not UTF-8: byte 0xe9 at offset 15")


@pytest.mark.parametrize("line,key,message", [
    ({k: v for k, v in request("b").items() if k != "url"}, "url", "missing key"),
    ({**request("b"), "custom_id": 7}, "custom_id", "expected a non-empty string, got 7"),
    ({**request("b"), "custom_id": ""}, "custom_id", "expected a non-empty string, got ''"),
    (request("b", method="GET"), "method", "expected POST, got 'GET'"),
    (request("b", url="/v1/images/generations"), "url", "unknown endpoint '/v1/images"),
    (request("b", url="/v1/responses"), "url",
     "/v1/responses differs from /v1/chat/completions on line 1"),
    ({**request("b"), "body": "text"}, "body", "expected an object, got str"),
    (request("b", model=None), "body.model", "expected a model name, got None"),
    (request("b", model="gpt-4o"), "body.model", "gpt-4o differs from gpt-4o-mini"),
    (request("b", stream=True), "body.stream", "stream: true is not allowed in a batch"),
    (request("a"), "custom_id", "duplicate 'a' (first on line 1)"),
])
def test_each_input_line_problem_is_named_by_line_and_key(tmp_path, line, key, message):
    problem = only_problem(write(tmp_path, request("a"), line))
    assert (problem.where.line, problem.where.key) == (2, key)
    assert problem.message.startswith(message)


def test_a_second_model_is_reported_once(tmp_path):
    report = check_file(write(tmp_path, request("a"), request("b", model="gpt-4o"),
                              request("c", model="gpt-4o")))
    assert report.problem_count == 1


@pytest.mark.parametrize("content", [b"", b"\n  \n"])
def test_an_empty_file_is_a_problem(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    problem = only_problem(path)
    assert (problem.where.line, problem.message) == (0, "empty file: no requests")


def test_more_than_50000_requests_is_a_problem(tmp_path):
    lines = [{"custom_id": f"r{i}", "method": "POST", "url": "/v1/embeddings",
              "body": {"model": "text-embedding-3-small", "input": "x"}} for i in range(50_001)]
    problem = only_problem(write(tmp_path, *lines))
    assert problem.where.line == 50_001 and problem.message.startswith("more than 50,000")


def test_a_file_over_the_size_limit_is_a_problem_at_the_line_that_passes_it(tmp_path,
                                                                             monkeypatch):
    line = (json.dumps(request("a")) + "\n").encode()
    monkeypatch.setattr(batchfile, "MAX_BYTES", 2 * len(line) + 1)
    problem = only_problem(write(tmp_path, request("a"), request("b"), request("c")))
    assert problem.where.line == 3 and "MB" in problem.message


def test_only_the_first_problems_are_kept_but_all_are_counted(tmp_path):
    path = write(tmp_path, *[request("same") for _ in range(31)])
    report = check_file(path, limit=20)
    assert report.problem_count == 30 and len(report.problems) == 20
    assert report.problems[0].where.line == 2


def test_a_line_that_is_neither_input_nor_output_is_reported(tmp_path):
    problem = only_problem(write(tmp_path, {"prompt": "hi"}))
    assert problem.message.startswith("neither a batch input line")


def output_line(custom_id, response, error=None):
    return {"id": f"batch_req_{custom_id}", "custom_id": custom_id, "response": response,
            "error": error}


def test_failed_requests_are_counted_not_reported_as_file_problems(tmp_path):
    path = write(tmp_path,
                 output_line("a", {"status_code": 400, "request_id": "x", "body": {"error": {
                     "message": "bad", "type": "invalid_request_error", "code": None}}}),
                 output_line("b", None, {"code": "batch_expired", "message": "expired"}))
    report = check_file(path)
    assert report.ok
    assert report.summary.kind == "output"
    assert report.summary.outcomes == {"http": 1, "batch_expired": 1}


@pytest.mark.parametrize("line,key,message", [
    (output_line("b", "oops"), "response", "malformed: response is a str"),
    (output_line("b", {"status_code": 200, "request_id": "x", "body": {"object": "odd"}}),
     "response", "malformed: status 200 body has no choices, output or data"),
    ({"id": "batch_req_b", "custom_id": "b", "response": {
        "status_code": 500, "request_id": "x", "body": {}}}, "error", "missing key"),
    (output_line("a", None, {"code": "batch_cancelled", "message": "x"}), "custom_id",
     "duplicate 'a' (first on line 1)"),
])
def test_output_lines_without_the_batch_shape_are_reported(tmp_path, line, key, message):
    first = output_line("a", None, {"code": "batch_expired", "message": "x"})
    problem = only_problem(write(tmp_path, first, line))
    assert (problem.where.line, problem.where.key) == (2, key)
    assert problem.message.startswith(message)


REAL_FILES = sorted(p.relative_to(REAL).as_posix() for p in REAL.glob("**/*.jsonl"))


@pytest.mark.parametrize("relative", REAL_FILES)
def test_the_real_files_pass_as_what_they_are(relative):
    report = check_file(REAL / relative)
    assert report.ok, [str(p) for p in report.problems]
    expected_kind = "input" if "input" in Path(relative).name else "output"
    assert report.summary.kind == expected_kind
    with (REAL / relative).open(encoding="utf-8") as fh:
        assert report.summary.lines == sum(1 for line in fh if line.strip())


def test_real_output_summaries_count_outcomes_and_infer_the_endpoint():
    summary = check_file(REAL / "chat-finish-length/output.jsonl").summary
    assert summary.outcomes == {"ok": 102, "truncated": 26}
    assert (summary.endpoint, summary.model) == ("/v1/chat/completions", "gpt-4o-2024-11-20")
    summary = check_file(REAL / "responses-api/valzaak.output.jsonl").summary
    assert (summary.endpoint, summary.model) == ("/v1/responses", "gpt-4.1-nano-2025-04-14")
