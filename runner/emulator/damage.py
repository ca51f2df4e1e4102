"""A batch's output or error file, served damaged on purpose (faults.FileDamage).

Real downloads go wrong in a few ways a client must survive: a connection cut before the
end, a byte mangled on the way, a proxy's HTML error page served with status 200, an empty
body, and, rarer, files whose lines do not match the requests (a duplicate, a stranger, a
line without its answer). Each damage is built from the whole file without reading it
into memory: only its first line is read, the rest is streamed.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .faults import FileDamage
from .state import jsonl_line

JSONL_TYPE = "application/octet-stream"  # what the real file content endpoint answers
HTML_PAGE = (b"<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
             b"<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx</center>\r\n"
             b"</body>\r\n</html>\r\n")
UNKNOWN_CUSTOM_ID = "emulator-unknown-custom-id"
INVALID_BYTE = b"\xff"  # never valid in UTF-8
_CHUNK = 1 << 16


@dataclass
class Body:
    chunks: Iterable[bytes]
    length: int
    content_type: str = JSONL_TYPE


def whole(path: Path) -> Body:
    handle = path.open("rb")  # open now: a delete after this point cannot cut the answer
    size = os.fstat(handle.fileno()).st_size
    return Body(_stream(handle, 0, size), size)


def damaged(path: Path, damage: FileDamage) -> Body:
    handle = path.open("rb")
    size = os.fstat(handle.fileno()).st_size
    kind = damage.damage
    if kind in ("empty", "html"):
        handle.close()
        return Body([], 0) if kind == "empty" else \
            Body([HTML_PAGE], len(HTML_PAGE), "text/html; charset=utf-8")
    if kind == "truncated":
        kept = max(0, size - damage.bytes)
        return Body(_stream(handle, 0, kept), kept)
    first = handle.readline()
    rest = _stream(handle, len(first), size)
    if kind == "invalid_utf8":
        mangled = _with_invalid_byte(first)
        return Body(_chain([mangled], rest), size - len(first) + len(mangled))
    if kind == "duplicate_line":
        return Body(_chain([first], rest, [first]), size + len(first))
    line = json.loads(first)
    if kind == "unknown_custom_id":
        stranger = jsonl_line({**line, "custom_id": UNKNOWN_CUSTOM_ID})
        return Body(_chain([first], rest, [stranger]), size + len(stranger))
    line.pop("response", None)  # no_response
    line["error"] = None
    answerless = jsonl_line(line)
    return Body(_chain([answerless], rest), size - len(first) + len(answerless))


def _with_invalid_byte(line: bytes) -> bytes:
    """The line with a non-UTF-8 byte inside its first string value (the line's `id`), so
    that the line is still JSON once decoded with replacement, but not UTF-8."""
    at = line.find(b'": "')
    at = at + 4 if at >= 0 else min(1, len(line))
    return line[:at] + INVALID_BYTE + line[at:]


def _stream(handle: BinaryIO, start: int, end: int) -> Iterator[bytes]:
    with handle:
        handle.seek(start)
        left = end - start
        while left > 0 and (chunk := handle.read(min(_CHUNK, left))):
            left -= len(chunk)
            yield chunk


def _chain(*parts: Iterable[bytes]) -> Iterator[bytes]:
    for part in parts:
        yield from part
