"""A streaming reader of `multipart/form-data` uploads, for files of up to 512 MB.

The standard library's parsers read a whole body into memory; this one keeps at most a
chunk and a delimiter's length of it, writing the file part straight to disk.
"""

from __future__ import annotations

import email.message
import email.parser
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from .api_error import bad_request

CHUNK = 1 << 16
MAX_HEADER_BYTES = 16 << 10
MAX_FIELD_BYTES = 64 << 10


@dataclass
class Form:
    fields: dict[str, str] = field(default_factory=dict)
    filename: str | None = None  # of the part named "file", written to the target path
    file_bytes: int = 0


class _Body:
    def __init__(self, stream: BinaryIO, length: int):
        self.stream = stream
        self.left = length
        self.buffer = b""

    def fill(self) -> bool:
        if self.left <= 0:
            return False
        chunk = self.stream.read(min(CHUNK, self.left))
        if not chunk:
            self.left = 0
            return False
        self.left -= len(chunk)
        self.buffer += chunk
        return True

    def until(self, marker: bytes, limit: int) -> bytes:
        """Everything before `marker` (which is consumed); at most `limit` bytes."""
        while (index := self.buffer.find(marker)) < 0:
            if len(self.buffer) > limit or not self.fill():
                raise bad_request("Invalid multipart body.")
        taken, self.buffer = self.buffer[:index], self.buffer[index + len(marker):]
        return taken

    def stream_until(self, marker: bytes, sink: BinaryIO, limit: int) -> int:
        written = 0
        while (index := self.buffer.find(marker)) < 0:
            keep = len(marker) - 1
            if len(self.buffer) > keep:
                sink.write(self.buffer[:-keep])
                written += len(self.buffer) - keep
                self.buffer = self.buffer[-keep:]
            if written > limit:
                raise bad_request("File is too large.", param="file")
            if not self.fill():
                raise bad_request("Invalid multipart body: it ends inside a part.")
        sink.write(self.buffer[:index])
        self.buffer = self.buffer[index + len(marker):]
        return written + index


def _boundary(content_type: str) -> bytes:
    message = email.message.Message()
    message["content-type"] = content_type
    boundary = message.get_param("boundary")
    if message.get_content_type() != "multipart/form-data" or not isinstance(boundary, str):
        raise bad_request("Invalid file upload: expected a multipart/form-data body with a "
                          "boundary.")
    return boundary.encode("latin-1")


def read_form(stream: BinaryIO, length: int, content_type: str, target: Path,
              max_file_bytes: int) -> Form:
    """Read the form's text fields, and write its `file` part to `target`."""
    delimiter = b"--" + _boundary(content_type)
    body = _Body(stream, length)
    body.until(delimiter, MAX_HEADER_BYTES)
    form = Form()
    while True:
        if body.until(b"\r\n", MAX_HEADER_BYTES).startswith(b"--"):
            break  # the closing delimiter
        raw_headers = body.until(b"\r\n\r\n", MAX_HEADER_BYTES)
        headers = email.parser.HeaderParser().parsestr(raw_headers.decode("utf-8", "replace"))
        name = headers.get_param("name", header="content-disposition")
        filename = headers.get_filename()
        if name == "file" and filename is not None:
            with target.open("wb") as sink:
                form.file_bytes = body.stream_until(b"\r\n" + delimiter, sink,
                                                    max_file_bytes)
            if form.file_bytes > max_file_bytes:
                raise bad_request("File is too large.", param="file")
            form.filename = filename
        else:
            value = body.until(b"\r\n" + delimiter, MAX_FIELD_BYTES)
            if isinstance(name, str):
                form.fields[name] = value.decode("utf-8", "replace")
    while body.fill():  # the epilogue, if any
        body.buffer = b""
    return form
