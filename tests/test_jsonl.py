"""Reading JSONL files line by line (runner/jsonl.py): every line stands alone."""

from __future__ import annotations

import json

import pytest

from runner.errors import BatchrunError
from runner.jsonl import Line, iter_jsonl, read_lines, recover_custom_id


def test_iter_jsonl_streams_objects_with_1_based_line_numbers_skipping_blanks(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_text('{"a": 1}\n\n  \n{"b": 2}\n', encoding="utf-8")
    assert list(iter_jsonl(path)) == [(1, {"a": 1}), (4, {"b": 2})]


@pytest.mark.parametrize("content,message", [
    (b'{"a": 1}\n{"a": }\n', "invalid JSON: Expecting value at char 6"),
    (b'{"a": 1}\n[1, 2]\n', "expected a JSON object, got list"),
    (b'{"a": 1}\n{"a": "\xff"}\n', "not UTF-8: byte 0xff at offset 7"),
])
def test_a_malformed_line_raises_an_error_naming_file_and_line(tmp_path, content, message):
    path = tmp_path / "bad.jsonl"
    path.write_bytes(content)
    with pytest.raises(BatchrunError) as caught:
        list(iter_jsonl(path))
    assert caught.value.message == message
    assert (caught.value.where.file, caught.value.where.line) == (str(path), 2)


# ---- downloaded files: read_lines never stops at a bad line ------------------------------

GOOD = {"id": "batch_req_1", "custom_id": "k1", "response": {"status_code": 200, "body": {}}}


def jsonl(*objs: dict) -> bytes:
    return b"".join(json.dumps(o).encode() + b"\n" for o in objs)


def test_every_line_after_a_bad_one_is_still_read(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(jsonl(GOOD) + b'{"custom_id": "k2", "resp\n' + b"\n"
                     + jsonl({**GOOD, "custom_id": "k3"}))
    lines = list(read_lines(path))
    assert [(line.number, line.obj is not None) for line in lines] == \
        [(1, True), (2, False), (4, True)]
    assert lines[1] == Line(2, None, "invalid JSON: Invalid control character at char 25",
                            "k2")
    assert lines[2].obj["custom_id"] == "k3"


@pytest.mark.parametrize("raw,custom_id", [
    pytest.param(json.dumps(GOOD).encode()[:-16], "k1", id="cut short"),
    pytest.param(json.dumps(GOOD).encode().replace(b"batch_req_1", b"batch_req_\xff1"), "k1",
                 id="a byte that is not UTF-8"),
    pytest.param(b'{"id": "x", "custom_id": "caf\xe9", "response": ', None,
                 id="the custom_id itself is mangled"),
    pytest.param(b"<html><body>502 Bad Gateway</body></html>", None, id="html"),
    pytest.param(b'{"id": "x", "response": {"body": "\\"custom_id\\": \\"k9\\""', None,
                 id="only an escaped custom_id inside a text"),
    pytest.param(b"[1, 2]", None, id="not an object"),
])
def test_an_unreadable_line_gives_its_custom_id_only_when_it_shows_it(raw, custom_id):
    assert recover_custom_id(raw) == custom_id


def test_an_html_page_is_unreadable_line_by_line(tmp_path):
    path = tmp_path / "out.jsonl"
    path.write_bytes(b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n</html>\r\n")
    lines = list(read_lines(path))
    assert [line.number for line in lines] == [1, 2, 3]
    assert all(line.obj is None and line.custom_id is None for line in lines)
    assert lines[0].problem == "invalid JSON: Expecting value at char 0"
