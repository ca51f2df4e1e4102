"""Reading JSONL files line by line, each line on its own.

Downloaded output and error files are read with `read_lines`: a line that is not UTF-8, not
JSON or not an object is reported with its number and, when the line still shows it, its
custom_id, and never stops the lines after it. Files that must be whole (`validate` of a
batch file) use `decode_line` per line, or `iter_jsonl`, which raises at the first bad line.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import BatchrunError, Location


@dataclass(frozen=True)
class Line:
    """One non-blank line of a JSONL file, read on its own: the object, or why it is
    unreadable and, when the line still shows it, whose line it was."""

    number: int                   # 1-based
    obj: dict | None              # None: the line is unreadable
    problem: str | None = None    # why (not UTF-8, invalid JSON, not an object)
    custom_id: str | None = None  # recovered from an unreadable line, when it shows one


def read_lines(path: Path) -> Iterator[Line]:
    """Each non-blank line of a file, streamed; a line that cannot be read is reported as
    such and never stops the lines after it."""
    with Path(path).open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                yield Line(number, decode_line(raw, Location(str(path), number)))
            except BatchrunError as exc:
                yield Line(number, None, exc.message, recover_custom_id(raw))


def iter_jsonl(path: Path) -> Iterator[tuple[int, dict]]:
    """(1-based line number, object) for each non-blank line, streamed.

    A line that is not UTF-8, not JSON or not an object raises BatchrunError naming the file
    and line (for files that must be whole; downloaded files use `read_lines`)."""
    for line in read_lines(path):
        if line.obj is None:
            raise BatchrunError(line.problem or "unreadable line",
                                where=Location(str(path), line.number),
                                hint="batch files must be UTF-8 encoded"
                                if (line.problem or "").startswith("not UTF-8") else None)
        yield line.number, line.obj


# A line's own custom_id: a key at the line's top level comes before any long text in
# the Batch API's lines, and inside a JSON string it would be escaped (\"custom_id\").
_CUSTOM_ID = re.compile(rb'"custom_id"\s*:\s*"([^"\\]{1,512})"')
_CUSTOM_ID_WINDOW = 4096


def recover_custom_id(raw: bytes) -> str | None:
    """The custom_id an unreadable line still shows: parsed with bad bytes replaced, or
    found near the line's start (a line cut short keeps its beginning)."""
    try:
        obj = json.loads(raw.decode("utf-8", "replace"))
    except json.JSONDecodeError:
        obj = None
    if isinstance(obj, dict):
        found = obj.get("custom_id")
        return found if isinstance(found, str) and found and "\ufffd" not in found else None
    match = _CUSTOM_ID.search(raw[:_CUSTOM_ID_WINDOW])
    if match is None:
        return None
    try:
        return match.group(1).decode("utf-8")
    except UnicodeDecodeError:
        return None


def decode_line(raw: bytes, where: Location) -> dict:
    """One JSONL line as an object, or a BatchrunError located at `where`."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BatchrunError(f"not UTF-8: byte 0x{raw[exc.start]:02x} at offset {exc.start}",
                            where=where, hint="batch files must be UTF-8 encoded") from None
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as exc:
        # json's messages may end in "at" ("Invalid control character at")
        message = exc.msg.removesuffix(" at")
        raise BatchrunError(f"invalid JSON: {message} at char {exc.pos}", where=where) from None
    if not isinstance(obj, dict):
        raise BatchrunError(f"expected a JSON object, got {type(obj).__name__}", where=where)
    return obj
