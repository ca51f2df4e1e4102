"""Faults the emulator injects: what can go wrong with the real Batch API, on purpose.

A `Faults` value is plain configuration. It comes from the command line
(`--http-fault "POST /v1/batches=429x2"`, `--request-failure-rate 0.1`, ...), from JSON
(`POST /_emulator/faults`), or from Python (`emu.faults = Faults(...)`).

Every random choice is a pure function of (seed, batch ordinal, custom_id, kind): the
same run gives the same faults, and a request that failed in one batch gets a fresh draw
when it is sent again in a new batch, so a retry can succeed.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import hashlib
import math
import re
from dataclasses import dataclass, field
from typing import Any

_HTTP_FAULT = re.compile(
    r"^\s*(?P<route>[^=]+?)\s*=\s*(?P<status>\d{3})(?:\s*x\s*(?P<times>\d+))?"
    r"(?P<options>(?:\s*,\s*[a-z-]+(?:=\d+)?)*)\s*$")
RETRYABLE_STATUSES = (429, 500, 502, 503, 504, 529)  # 529: Anthropic's overloaded_error


@dataclass(frozen=True)
class HttpFault:
    """Answer `times` calls matching `route` with HTTP `status` instead of the real answer.

    `route` is "METHOD /path", with shell wildcards ("GET /v1/batches/*", "* *").
    With `after`, the call takes effect first and only its answer is lost, as when a
    connection drops after the server committed: a create retried by the SDK then
    creates a second batch.
    """

    route: str
    status: int
    times: int = 1
    retry_after_ms: int | None = 10
    after: bool = False

    def __post_init__(self) -> None:
        if self.status not in RETRYABLE_STATUSES:
            raise ValueError(f"HTTP fault status must be one of {RETRYABLE_STATUSES}, "
                             f"not {self.status}")
        if self.times < 1:
            raise ValueError("HTTP fault times must be at least 1")

    def retry_headers(self) -> dict[str, str]:
        """What the answer tells a client to wait: `retry-after-ms`, and `retry-after` in
        whole seconds for clients that read only that (both dialects)."""
        if self.retry_after_ms is None:
            return {}
        return {"retry-after-ms": str(self.retry_after_ms),
                "retry-after": str(max(1, math.ceil(self.retry_after_ms / 1000)))}

    def matches(self, method: str, path: str) -> bool:
        want_method, _, want_path = self.route.partition(" ")
        return (fnmatch.fnmatchcase(method, want_method.upper())
                and fnmatch.fnmatchcase(path, want_path.strip() or "*"))

    @classmethod
    def parse(cls, text: str) -> HttpFault:
        """`ROUTE=STATUS[xTIMES][,retry-after-ms=MS][,no-retry-after][,after]`."""
        match = _HTTP_FAULT.match(text)
        if not match:
            raise ValueError(f"cannot read HTTP fault {text!r}; expected e.g. "
                             "'POST /v1/batches=429x2,retry-after-ms=50'")
        values: dict[str, Any] = dict(route=match["route"], status=int(match["status"]),
                                      times=int(match["times"] or 1))
        for name, number in _options(match["options"]):
            if name == "after" and not number:
                values["after"] = True
            elif name == "retry-after-ms" and number:
                values["retry_after_ms"] = int(number)
            elif name == "no-retry-after" and not number:
                values["retry_after_ms"] = None
            else:
                raise ValueError(f"unknown HTTP fault option {name!r} in {text!r}")
        return cls(**values)


DAMAGES = ("truncated", "invalid_utf8", "html", "empty", "duplicate_line", "unknown_custom_id",
           "no_response")
_FILE_DAMAGE = re.compile(r"^\s*(?P<file>[a-z]+)\s*=\s*(?P<damage>[a-z_0-9]+)"
                          r"(?P<options>(?:\s*,\s*[a-z-]+=[0-9+]+)*)\s*$")


@dataclass(frozen=True)
class FileDamage:
    """Serve the output or error file of a batch damaged, as a provider's storage or a proxy
    in between sometimes does.

    `damage` is one of DAMAGES: `truncated` (the last `bytes` bytes cut), `invalid_utf8`
    (one byte that is not UTF-8 in the first line), `html` (an HTML error page instead of
    JSONL, with status 200), `empty` (no bytes), `duplicate_line` (the first line again at
    the end), `unknown_custom_id` (an extra line whose custom_id no request has),
    `no_response` (the first line without `response`, and `error` null).
    `times`: None damages every download of the file (persistent); N only its first N
    downloads (transient: a client that downloads again gets the whole file).
    `batches`: the ordinals of the batches whose files it damages (1 is the first batch
    created); empty: every batch.
    """

    file: str  # "output" or "error"
    damage: str
    times: int | None = None
    batches: tuple[int, ...] = ()
    bytes: int = 16  # for `truncated`

    def __post_init__(self) -> None:
        object.__setattr__(self, "batches", tuple(self.batches))
        if self.file not in ("output", "error"):
            raise ValueError(f"damaged file must be 'output' or 'error', not {self.file!r}")
        if self.damage not in DAMAGES:
            raise ValueError(f"unknown damage {self.damage!r}; known: {', '.join(DAMAGES)}")
        if self.times is not None and self.times < 1:
            raise ValueError("damaged file times must be at least 1 (or absent: every time)")
        if self.bytes < 1:
            raise ValueError("damaged file bytes must be at least 1")

    def matches(self, part: str, ordinal: int) -> bool:
        return part == self.file and (not self.batches or ordinal in self.batches)

    @classmethod
    def parse(cls, text: str) -> FileDamage:
        """`FILE=DAMAGE[,times=N][,batches=1+3][,bytes=N]`, e.g. `output=html,times=1`."""
        match = _FILE_DAMAGE.match(text)
        if not match:
            raise ValueError(f"cannot read damaged file {text!r}; expected e.g. "
                             "'output=truncated,bytes=40,times=1,batches=1+2'")
        values: dict[str, Any] = dict(file=match["file"], damage=match["damage"])
        for name, number in _options(match["options"]):
            if name in ("times", "bytes") and number.isdigit():
                values[name] = int(number)
            elif name == "batches" and number:
                values["batches"] = tuple(int(n) for n in number.split("+") if n)
            else:
                raise ValueError(f"unknown damaged file option {name!r} in {text!r}")
        return cls(**values)


def _options(text: str) -> list[tuple[str, str]]:
    """`,name=value,flag` → [(name, value), (flag, "")]."""
    return [(name.strip(), value.strip()) for name, _, value in
            (option.partition("=") for option in text.split(",") if option.strip())]


@dataclass(frozen=True)
class Faults:
    """All injectable faults; the default injects none."""

    seed: int = 0
    http: tuple[HttpFault, ...] = ()
    # Per request, drawn independently for each (batch, custom_id):
    request_failure_rate: float = 0.0  # a 500/503 body in the error file
    status_zero_rate: float = 0.0  # the real oddity: status_code 0, request_id "", body {}
    invalid_json_rate: float = 0.0  # JSON content that does not parse
    truncation_rate: float = 0.0  # finish_reason "length", content cut mid-way
    fence_rate: float = 0.0  # JSON content wrapped in ```json fences
    refusal_rate: float = 0.0  # the model declines: a refusal, billed, not retryable
    invalid_request_rate: float = 0.0  # Anthropic dialect: an errored invalid_request_error
    # Per batch:
    token_limit_batches: int = 0  # the next N batches fail with token_limit_exceeded
    enqueued_token_limit: int | None = None  # per model, over batches not yet finished
    expire_after_requests: int | None = None  # a batch expires after executing N requests
    # Per download of a batch's output or error file:
    damaged_files: tuple[FileDamage, ...] = ()
    # Per list of batches:
    list_lag_seconds: float = 0.0  # GET /v1/batches hides batches younger than this
    # Per emulator:
    crash_after_calls: int | None = None  # after N API calls, the next one crashes it

    def __post_init__(self) -> None:
        object.__setattr__(self, "http", tuple(self.http))
        object.__setattr__(self, "damaged_files", tuple(self.damaged_files))
        if self.list_lag_seconds < 0:
            raise ValueError("list_lag_seconds must not be negative")
        for name in ("request_failure_rate", "status_zero_rate", "invalid_json_rate",
                     "truncation_rate", "fence_rate", "refusal_rate", "invalid_request_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate}")
        if self.request_failure_rate + self.status_zero_rate > 1.0:
            raise ValueError("request_failure_rate + status_zero_rate must not exceed 1")
        if self.request_failure_rate + self.invalid_request_rate > 1.0:
            raise ValueError("request_failure_rate + invalid_request_rate must not exceed 1")
        for name in ("token_limit_batches", "enqueued_token_limit", "expire_after_requests",
                     "crash_after_calls"):
            value = getattr(self, name)
            if value is not None and value < 0:
                raise ValueError(f"{name} must not be negative")

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: Any) -> Faults:
        """Strict: an unknown key is an error, so a typo cannot silently inject nothing."""
        if not isinstance(data, dict):
            raise ValueError("faults must be a JSON object")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown fault {unknown[0]!r}; known: {', '.join(sorted(known))}")
        values = dict(data)
        values["http"] = _read_items(values.get("http", ()), HttpFault, "HTTP fault")
        values["damaged_files"] = _read_items(values.get("damaged_files", ()), FileDamage,
                                              "damaged file")
        try:
            return cls(**values)
        except TypeError as err:
            raise ValueError(str(err)) from None

    def per_batch(self) -> dict[str, Any]:
        """What a batch keeps of the faults when it is created (so a restart replays it)."""
        return {name: getattr(self, name) for name in _PER_BATCH}


def _read_items(items: Any, cls: Any, what: str) -> tuple[Any, ...]:
    """A list of faults given as strings (`cls.parse`) or objects (its fields)."""
    known = {f.name for f in dataclasses.fields(cls)}
    read = []
    for item in items:
        if isinstance(item, str):
            read.append(cls.parse(item))
        elif isinstance(item, dict) and set(item) <= known:
            read.append(cls(**item))
        else:
            raise ValueError(f"cannot read {what} {item!r}")
    return tuple(read)


_PER_BATCH = ("seed", "request_failure_rate", "status_zero_rate", "invalid_json_rate",
              "truncation_rate", "fence_rate", "refusal_rate", "expire_after_requests",
              "invalid_request_rate")


@dataclass
class FaultCounters:
    """What is left of the counted faults; reset whenever the faults are replaced."""

    http_left: list[int] = field(default_factory=list)
    token_limit_left: int = 0
    calls_before_crash: int | None = None
    damaged_downloads: dict[str, int] = field(default_factory=dict)  # "<damage>/<file id>"
    sync_calls: int = 0  # synchronous calls answered; each gets fresh draws

    @classmethod
    def start(cls, faults: Faults) -> FaultCounters:
        return cls([f.times for f in faults.http], faults.token_limit_batches,
                   faults.crash_after_calls)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def draw(seed: int, ordinal: int, custom_id: str, kind: str) -> float:
    """A number in [0, 1) fixed by its arguments: the emulator's only source of chance."""
    digest = hashlib.sha256(f"{seed}\0{ordinal}\0{custom_id}\0{kind}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64
