"""A bad input file fails its batch during `validating`, like the real service."""

from __future__ import annotations

import json

import pytest
from emulator_fixtures import (  # noqa: F401  (fixtures)
    chat_request,
    chat_requests,
    emulator,
    inprocess_client,
    jsonl,
    local,
    new_emulator,
    run_batch,
)

from runner.emulator import EmulatorConfig
from runner.emulator.config import MAX_BATCH_BYTES, MAX_REQUESTS_PER_BATCH

GOOD = chat_request("a", "hello")


def _with(**changes) -> dict:
    line = json.loads(json.dumps(chat_request("b", "hello")))
    for dotted, value in changes.items():
        *path, last = dotted.split("__")
        node = line
        for part in path:
            node = node[part]
        if value is _DROP:
            del node[last]
        else:
            node[last] = value
    return line


_DROP = object()
CASES = {
    "invalid JSON line": (jsonl([GOOD]) + b'{"custom_id": "b", oops\n',
                          "invalid_json_line", 2, None),
    "duplicate custom_id": (jsonl([GOOD, GOOD]), "duplicate_custom_id", 2, "custom_id"),
    "url not the endpoint": (jsonl([GOOD, _with(url="/v1/embeddings")]), "invalid_url", 2,
                             "url"),
    "two models": (jsonl([GOOD, _with(body__model="gpt-4o")]), "mismatched_model", 2,
                   "body.model"),
    "stream true": (jsonl([GOOD, _with(body__stream=True)]), "streaming_unsupported", 2,
                    "body.stream"),
    "unknown model": (jsonl([_with(body__model="gpt-4o-mnii")]), "model_not_found", 1,
                      "body.model"),
    "missing custom_id": (jsonl([_with(custom_id=_DROP)]), "missing_required_parameter", 1,
                          "custom_id"),
    "missing messages": (jsonl([_with(body__messages=_DROP)]), "invalid_request", 1,
                         "body.messages"),
    "empty file": (b"", "empty_file", None, None),
    "blank lines only": (b"\n\n", "empty_file", None, None),
}


@pytest.mark.parametrize("content,code,line,param", CASES.values(), ids=CASES.keys())
def test_an_invalid_input_file_fails_the_batch_with_the_line_and_code(local, content, code,
                                                                      line, param):
    batch, output, errors = run_batch(local, content)
    assert batch.status == "failed" and batch.failed_at is not None
    assert batch.in_progress_at is None and output == errors == []
    error = batch.errors.data[0]
    assert (error.code, error.line, error.param) == (code, line, param)
    assert error.message


def test_every_bad_line_is_reported_not_only_the_first(local):
    content = jsonl([GOOD, GOOD, _with(body__stream=True)]) + b"not json\n"
    batch, _, _ = run_batch(local, content)
    assert [(e.code, e.line) for e in batch.errors.data] == [
        ("duplicate_custom_id", 2), ("streaming_unsupported", 3), ("invalid_json_line", 4)]


def test_more_than_50000_requests_fail_validation_at_request_50001(local):
    assert MAX_REQUESTS_PER_BATCH == 50_000
    line = json.dumps({"custom_id": "x", "method": "POST", "url": "/v1/embeddings",
                       "body": {"model": "text-embedding-3-small", "input": "x"}})
    content = "".join(line.replace('"x"', f'"{i}"', 1) + "\n"
                      for i in range(50_001)).encode()
    batch, _, _ = run_batch(local, content, endpoint="/v1/embeddings")
    assert batch.status == "failed"
    assert [(e.code, e.line) for e in batch.errors.data] == [("too_many_requests", 50_001)]


def test_a_file_over_the_byte_limit_fails_validation(new_emulator):
    assert MAX_BATCH_BYTES == 200_000_000  # the real "200 MB", read strictly
    emu = new_emulator(config=EmulatorConfig.instant(max_batch_bytes=1000))
    client = inprocess_client(emu)
    content = jsonl(chat_requests(20))
    assert len(content) > 1000
    batch, _, _ = run_batch(client, content)
    assert (batch.status, batch.errors.data[0].code) == ("failed", "file_too_large")
    assert run_batch(client, jsonl(chat_requests(2)))[0].status == "completed"


def test_a_file_whose_last_line_has_no_newline_is_valid(local):
    content = jsonl(chat_requests(3)).rstrip(b"\n")
    batch, output, _ = run_batch(local, content)
    assert batch.status == "completed" and len(output) == 3
