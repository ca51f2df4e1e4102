"""Request keys: the sha256 of exactly what is sent, computed the fast way or the plain
way with the same result, so the key scheme never changes by accident."""

from __future__ import annotations

import hashlib
import json

import pytest

from runner.keys import KEY_SCHEME, BodyFrame, canonical_json, request_key

SCHEMA = {"type": "object", "properties": {"t": {"type": "array", "items": {"type": "string"}}},
          "required": ["t"], "additionalProperties": False}
CASES = [
    ("/v1/chat/completions", {"model": "gpt-4o-mini", "temperature": 0, "max_tokens": 200,
                              "response_format": {"type": "json_schema", "json_schema": {
                                  "name": "tags", "strict": True, "schema": SCHEMA}}},
     ("messages",), {"messages": [{"role": "system", "content": "Tag it."},
                                  {"role": "user", "content": "Café «Zürich» 東京 \"q\" \\ \n"}]}),
    ("/v1/responses", {"model": "gpt-4.1-nano", "temperature": 0.0}, ("input", "instructions"),
     {"input": "Ünïcode and \u2028 separators", "instructions": "Answer briefly."}),
    ("/v1/embeddings", {"model": "text-embedding-3-small", "dimensions": 256}, ("input",),
     {"input": "{\"not\": \"json\"}"}),
]


@pytest.mark.parametrize("endpoint,constant,variable,values", CASES,
                         ids=[c[0] for c in CASES])
def test_the_fast_frame_gives_the_canonical_bytes_key_and_line(endpoint, constant, variable,
                                                               values):
    frame = BodyFrame(endpoint, constant, variable)
    body = {**constant, **values}
    serialised = frame.serialise(values)
    assert serialised == canonical_json(body)
    key = frame.key(serialised)
    assert key == request_key(endpoint, body)
    line = frame.line(key, serialised)
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    assert json.loads(line) == {"custom_id": key, "method": "POST", "url": endpoint, "body": body}


def test_canonical_json_sorts_keys_and_drops_whitespace():
    assert canonical_json({"b": 1, "a": [1, {"d": None, "c": "é"}]}) == \
        '{"a":[1,{"c":"é","d":null}],"b":1}'.encode()


def test_the_key_is_the_sha256_of_endpoint_and_body_and_the_scheme_is_named():
    assert KEY_SCHEME == "sha256/canonical-json/v1"
    expected = hashlib.sha256(
        b'{"body":{"input":"x","model":"m"},"endpoint":"/v1/embeddings"}').hexdigest()
    assert request_key("/v1/embeddings", {"model": "m", "input": "x"}) == expected
