"""Checking a batch JSONL file without the API, for `batchrun validate some.jsonl`.

A file is either a batch *input* file (lines of `custom_id, method, url, body`) or an
*output/error* file (lines of `id, custom_id, response, error`); the first line that is an
object decides which. The file is streamed line by line (files reach 200 MB), and every
problem the API would reject it for is reported with file, line and key:

- not UTF-8, invalid JSON (with the position), a line that is not an object;
- missing or wrongly typed keys, `method` other than POST, an unknown `url`, a url that differs
  from the first line's, more than one `body.model`, `body.stream: true`, a duplicate
  `custom_id`;
- an empty file, more than 50,000 requests, more than 200 MB;
- for output files, any line `results.parse_line` finds malformed. Failed requests (a 400, an
  expired request) are not problems of the file; they are counted in the summary.

Only the first `limit` problems are kept; `FileCheck.problem_count` has the total.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import BatchrunError, Location
from .jsonl import decode_line
from .results import Expect, parse_line

MAX_REQUESTS = 50_000  # per batch file (OpenAI Batch API limit)
MAX_BYTES = 200_000_000  # "200 MB", read conservatively as decimal megabytes
ENDPOINTS = ("/v1/responses", "/v1/chat/completions", "/v1/embeddings", "/v1/completions",
             "/v1/moderations")
INPUT_KEYS = ("custom_id", "method", "url", "body")
OUTPUT_KEYS = ("id", "custom_id", "response", "error")
# body.object of an output line → the endpoint that produced it
_OBJECT_ENDPOINTS = {"chat.completion": "/v1/chat/completions", "response": "/v1/responses",
                     "list": "/v1/embeddings", "text_completion": "/v1/completions"}


@dataclass(frozen=True)
class Problem:
    where: Location
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


@dataclass(frozen=True)
class Summary:
    kind: str  # "input", "output", or "unknown" (empty, or no line looked like either)
    lines: int  # non-blank lines
    bytes: int
    endpoint: str | None  # input: the url; output: inferred from the bodies
    model: str | None  # the first body.model seen
    outcomes: Mapping[str, int] = field(default_factory=dict)  # output: Outcome.kind → count


@dataclass(frozen=True)
class FileCheck:
    summary: Summary
    problems: tuple[Problem, ...]  # the first `limit`
    problem_count: int  # all of them

    @property
    def ok(self) -> bool:
        return self.problem_count == 0


def check_file(path: Path, *, limit: int = 20, display: str | None = None) -> FileCheck:
    """Check a batch input or output file, streaming it once; `display` is how messages
    name it (default: the path as given)."""
    checker = _Checker(display or str(path), limit)
    try:
        fh = Path(path).open("rb")
    except FileNotFoundError:
        raise BatchrunError("file not found", where=Location(checker.file),
                            hint="name a batch input or output .jsonl file") from None
    except OSError as exc:
        raise BatchrunError(f"cannot read the file: {exc.strerror}",
                            where=Location(checker.file)) from None
    with fh:
        for number, raw in enumerate(fh, start=1):
            checker.feed(number, raw)
    return checker.report()


class _Checker:
    def __init__(self, file: str, limit: int):
        self.file, self.limit = file, limit
        self.problems: list[Problem] = []
        self.count = 0
        self.kind: str | None = None
        self.lines = self.size = 0
        self.first_ids: dict[str, int] = {}
        self.endpoint: str | None = None
        self.endpoint_line = 0
        self.model: str | None = None
        self.models: set[str] = set()
        self.outcomes: Counter[str] = Counter()

    def add(self, line: int, key: str, message: str) -> None:
        self.count += 1
        if len(self.problems) < self.limit:
            self.problems.append(Problem(Location(self.file, line, key), message))

    def feed(self, number: int, raw: bytes) -> None:
        before, self.size = self.size, self.size + len(raw)
        if before <= MAX_BYTES < self.size:
            self.add(number, "", f"the file passes {MAX_BYTES // 1_000_000} MB here, the Batch "
                                 "API's limit per file; split it")
        if not raw.strip():
            return
        self.lines += 1
        if self.lines == MAX_REQUESTS + 1:
            self.add(number, "", f"more than {MAX_REQUESTS:,} requests, the Batch API's limit "
                                 "per file; split it")
        try:
            obj = decode_line(raw, Location(self.file, number))
        except BatchrunError as exc:
            self.add(number, "", exc.message)
            return
        if self.kind is None:
            self.kind = _kind_of(obj)
            if self.kind is None:
                self.add(number, "", "neither a batch input line (custom_id, method, url, body) "
                                     "nor an output line (id, custom_id, response, error)")
                return
        if self.kind == "input":
            self.check_input(number, obj)
        else:
            self.check_output(number, obj)

    def check_keys(self, number: int, obj: dict, keys: tuple[str, ...]) -> None:
        for key in keys:
            if key not in obj:
                self.add(number, key, f"missing key ({self.kind} lines have "
                                      f"{', '.join(keys)})")
        custom_id = obj.get("custom_id")
        if "custom_id" in obj and (not isinstance(custom_id, str) or not custom_id):
            self.add(number, "custom_id", f"expected a non-empty string, got {custom_id!r}")
        elif isinstance(custom_id, str):
            first = self.first_ids.setdefault(custom_id, number)
            if first != number:
                self.add(number, "custom_id", f"duplicate {custom_id!r} (first on line {first})")

    def check_input(self, number: int, obj: dict) -> None:
        self.check_keys(number, obj, INPUT_KEYS)
        method, url, body = obj.get("method"), obj.get("url"), obj.get("body")
        if "method" in obj and method != "POST":
            self.add(number, "method", f"expected POST, got {method!r}")
        if "url" in obj and url not in ENDPOINTS:
            self.add(number, "url", f"unknown endpoint {url!r}; expected one of "
                                    f"{', '.join(ENDPOINTS)}")
        elif isinstance(url, str) and self.endpoint is None:
            self.endpoint, self.endpoint_line = url, number
        elif isinstance(url, str) and url != self.endpoint:
            self.add(number, "url", f"{url} differs from {self.endpoint} on line "
                                    f"{self.endpoint_line}: a batch has one endpoint")
        if "body" not in obj:
            return
        if not isinstance(body, dict):
            self.add(number, "body", f"expected an object, got {type(body).__name__}")
            return
        self.check_model(number, body.get("model"))
        if body.get("stream") is True:
            self.add(number, "body.stream", "stream: true is not allowed in a batch")

    def check_model(self, number: int, model: Any) -> None:
        if not isinstance(model, str) or not model:
            self.add(number, "body.model", f"expected a model name, got {model!r}")
        elif self.model is None:
            self.model = model
            self.models.add(model)
        elif model not in self.models:
            self.models.add(model)
            self.add(number, "body.model", f"{model} differs from {self.model}: a batch has "
                                           "one model")

    def check_output(self, number: int, obj: dict) -> None:
        self.check_keys(number, obj, OUTPUT_KEYS)
        response = obj.get("response")
        body = response.get("body") if isinstance(response, dict) else None
        body = body if isinstance(body, dict) else {}
        embeddings = isinstance(body.get("data"), list)
        outcome = parse_line(obj, expect=Expect.EMBEDDING if embeddings else Expect.TEXT)
        self.outcomes[outcome.kind] += 1
        if outcome.kind == "malformed":
            self.add(number, "response", outcome.reason or "malformed")
        if self.model is None and outcome.model:
            self.model = outcome.model
        if self.endpoint is None and body.get("object") in _OBJECT_ENDPOINTS:
            self.endpoint = _OBJECT_ENDPOINTS[body["object"]]

    def report(self) -> FileCheck:
        if self.lines == 0:
            self.add(0, "", "empty file: no requests")
        summary = Summary(self.kind or "unknown", self.lines, self.size, self.endpoint,
                          self.model, dict(self.outcomes))
        return FileCheck(summary, tuple(self.problems), self.count)


def _kind_of(obj: dict) -> str | None:
    if "response" in obj or ("id" in obj and "error" in obj and "method" not in obj):
        return "output"
    if "method" in obj or "url" in obj or "body" in obj:
        return "input"
    return None
