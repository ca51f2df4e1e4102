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
import re
from dataclasses import dataclass, field
from typing import Any

_HTTP_FAULT = re.compile(
    r"^\s*(?P<route>[^=]+?)\s*=\s*(?P<status>\d{3})(?:\s*x\s*(?P<times>\d+))?"
    r"(?P<options>(?:\s*,\s*[a-z-]+(?:=\d+)?)*)\s*$")
RETRYABLE_STATUSES = (429, 500, 502, 503, 504)


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
        for option in filter(None, (o.strip() for o in match["options"].split(","))):
            name, _, number = option.partition("=")
            if name == "after" and not number:
                values["after"] = True
            elif name == "retry-after-ms" and number:
                values["retry_after_ms"] = int(number)
            elif name == "no-retry-after" and not number:
                values["retry_after_ms"] = None
            else:
                raise ValueError(f"unknown HTTP fault option {option!r} in {text!r}")
        return cls(**values)


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
    # Per batch:
    token_limit_batches: int = 0  # the next N batches fail with token_limit_exceeded
    enqueued_token_limit: int | None = None  # per model, over batches not yet finished
    expire_after_requests: int | None = None  # a batch expires after executing N requests
    # Per emulator:
    crash_after_calls: int | None = None  # after N API calls, the next one crashes it

    def __post_init__(self) -> None:
        object.__setattr__(self, "http", tuple(self.http))
        for name in ("request_failure_rate", "status_zero_rate", "invalid_json_rate",
                     "truncation_rate", "fence_rate"):
            rate = getattr(self, name)
            if not 0.0 <= rate <= 1.0:
                raise ValueError(f"{name} must be between 0 and 1, not {rate}")
        if self.request_failure_rate + self.status_zero_rate > 1.0:
            raise ValueError("request_failure_rate + status_zero_rate must not exceed 1")
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
        http_known = {f.name for f in dataclasses.fields(HttpFault)}
        http = []
        for item in values.get("http", ()):
            if isinstance(item, str):
                http.append(HttpFault.parse(item))
            elif isinstance(item, dict) and set(item) <= http_known:
                http.append(HttpFault(**item))
            else:
                raise ValueError(f"cannot read HTTP fault {item!r}")
        values["http"] = tuple(http)
        try:
            return cls(**values)
        except TypeError as err:
            raise ValueError(str(err)) from None

    def per_batch(self) -> dict[str, Any]:
        """What a batch keeps of the faults when it is created (so a restart replays it)."""
        return {name: getattr(self, name) for name in _PER_BATCH}


_PER_BATCH = ("seed", "request_failure_rate", "status_zero_rate", "invalid_json_rate",
              "truncation_rate", "fence_rate", "expire_after_requests")


@dataclass
class FaultCounters:
    """What is left of the counted faults; reset whenever the faults are replaced."""

    http_left: list[int] = field(default_factory=list)
    token_limit_left: int = 0
    calls_before_crash: int | None = None

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
