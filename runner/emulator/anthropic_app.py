"""The Anthropic dialect of the emulator: the Messages and Message Batches API over HTTP.

The same app and port as the OpenAI dialect answer it, routed by path (app.py sends
every path under /v1/messages and /_emulator/anthropic/ here):

    POST   /v1/messages                          a Message, at once (`try`)
    POST   /v1/messages/count_tokens             {"input_tokens": n}
    POST   /v1/messages/batches                  create (inline `requests`)
    GET    /v1/messages/batches                  list: limit, after_id / before_id
    GET    /v1/messages/batches/{id}             retrieve
    POST   /v1/messages/batches/{id}/cancel      cancel
    DELETE /v1/messages/batches/{id}             delete an ended batch
    GET    /v1/messages/batches/{id}/results     the results, JSONL, streamed
    GET    /_emulator/anthropic/executions       {"executed": {custom_id: n}, "billed": {…}}
    GET    /_emulator/anthropic/log              {"object": "list", "data": [<event>, …]}

API routes need an API key (`x-api-key`, or `Authorization: Bearer`, which the SDK's 2.x
versions send) and an `anthropic-version` header; `anthropic-beta` is read for the betas
that change answers. Errors are Anthropic's shape (anthropic_errors.py), with a
`request-id` header. The emulator's faults apply: HTTP faults by route (429/5xx/529 with
`retry-after`), and the per-request rates (anthropic_messages.answer).
"""

from __future__ import annotations

import json
import re
import sys
import traceback
from collections import Counter
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

from runner.keys import request_key

from . import ids
from .anthropic_batches import BatchRecord, MessageBatches
from .anthropic_errors import ERROR_TYPES, TRANSIENT_MESSAGES, AnthropicError, Path
from .anthropic_messages import answer, input_tokens
from .anthropic_params import check_shape
from .faults import HttpFault, draw
from .log import RequestLog
from .sync import RETRY_AFTER_MS

if TYPE_CHECKING:
    from .app import Emulator

PREFIXES = ("/v1/messages", "/_emulator/anthropic/")
MAX_MESSAGE_BYTES = 32_000_000  # "32 MB" for the Messages API (docs: request size limits)
_BATCH = r"/v1/messages/batches/(?P<batch_id>[^/]+)"
_ROUTES = [(method, re.compile(pattern), name) for method, pattern, name in [
    ("POST", r"/v1/messages", "create_message"),
    ("POST", r"/v1/messages/count_tokens", "count_tokens"),
    ("POST", r"/v1/messages/batches", "create_batch"),
    ("GET", r"/v1/messages/batches", "list_batches"),
    ("GET", _BATCH, "retrieve_batch"),
    ("DELETE", _BATCH, "delete_batch"),
    ("POST", _BATCH + "/cancel", "cancel_batch"),
    ("GET", _BATCH + "/results", "batch_results"),
    ("GET", r"/_emulator/anthropic/executions", "control_executions"),
    ("GET", r"/_emulator/anthropic/log", "control_log"),
]]
_VERSION = re.compile(r"^\d{4}-\d{2}-\d{2}$")

Answer = tuple[int, Iterable[bytes], list[tuple[str, str]]]


class AnthropicDialect:
    """Made by the Emulator (app.py) over its state dir, config, clock and faults."""

    def __init__(self, emulator: Emulator):
        self.emulator = emulator
        root = emulator.root / "anthropic"
        root.mkdir(parents=True, exist_ok=True)
        # Its own log: the OpenAI dialect's drops, on load, events of batches it does not know.
        self.log = RequestLog(root / "log.jsonl")
        self.batches = MessageBatches(root, emulator.config, emulator.clock,
                                      lambda: emulator.faults, self._execute, self.log)

    def executions(self, *, billed: bool | None = None) -> Counter[str]:
        """How many times each custom_id (a sync call: its request key) was executed."""
        return self.log.executions(billed=billed)

    # -- HTTP
    def handle(self, method: str, path: str, environ: dict[str, Any]) -> Answer:
        request_id = ids.anthropic_request_id()
        try:
            status, body, headers = self._route(method, path, environ)
        except AnthropicError as err:
            status, body, headers = _json(err.status, err.body(request_id), err.headers)
        except Exception:  # a bug in the emulator: answer like the real service's 500
            traceback.print_exc(file=environ.get("wsgi.errors", sys.stderr))
            error = AnthropicError("api_error", TRANSIENT_MESSAGES["api_error"])
            status, body, headers = _json(500, error.body(request_id))
        return status, body, [*headers, ("request-id", request_id)]

    def _route(self, method: str, path: str, environ: dict[str, Any]) -> Answer:
        found = next(((match, name) for verb, pattern, name in _ROUTES
                      if verb == method and (match := pattern.fullmatch(path))), None)
        if found is None:
            raise AnthropicError("not_found_error", f"Not Found ({method} {path})")
        match, handler = found
        if handler.startswith("control_"):
            return getattr(self, handler)(environ)
        _check_headers(environ)
        fault = self.emulator._take_http_fault(method, path, after=False)
        if fault:
            _drain(environ)
            raise _fault_error(fault)
        answer_now = getattr(self, handler)(environ, **match.groupdict())
        fault = self.emulator._take_http_fault(method, path, after=True)
        if fault:
            raise _fault_error(fault)
        return answer_now

    # -- /v1/messages
    def create_message(self, environ: dict[str, Any]) -> Answer:
        params = _json_body(environ, MAX_MESSAGE_BYTES)
        check_shape(params)
        if params.get("stream") is True:
            raise Path("stream").says("the batchrun emulator does not stream; send "
                                      "stream: false (or leave it out)")
        service = self.emulator.service
        with service.lock:
            rates = service.faults.per_batch()
            service.counters.sync_calls += 1
            call = service.counters.sync_calls
        key = request_key("/v1/messages", params)
        reply = answer(params, betas=_betas(environ), rates=rates, batch=False,
                       chance=lambda kind: draw(rates["seed"], -call, key, kind))
        status = 200 if reply.error is None else reply.error.status
        self.log.append({"event": "request_executed", "time": self.emulator.clock(),
                         "batch_id": None, "endpoint": "/v1/messages", "custom_id": key,
                         "status_code": status, "outcome": reply.outcome,
                         "billed": reply.error is None})
        if reply.error is not None:
            if reply.error.status >= 500:  # like the HTTP faults: retries need not wait
                reply.error.headers["retry-after-ms"] = RETRY_AFTER_MS
            raise reply.error
        return _json(200, reply.message)

    def count_tokens(self, environ: dict[str, Any]) -> Answer:
        params = _json_body(environ, MAX_MESSAGE_BYTES)
        if not isinstance(params, dict):
            raise Path().wrong_type("dictionary")
        return _json(200, {"input_tokens": input_tokens(params, _betas(environ))})

    def _execute(self, batch: BatchRecord, custom_id: str,
                 params: dict[str, Any]) -> tuple[dict[str, Any], str, int]:
        """One request of a batch: its result object, log outcome and status code."""
        rates = batch.faults
        reply = answer(params, betas=frozenset(batch.betas), rates=rates, batch=True,
                       chance=lambda kind: draw(rates.get("seed", 0), batch.ordinal,
                                                custom_id, kind))
        if reply.error is not None:
            return ({"type": "errored", "error": {"type": "error", "error": reply.error.error()}},
                    reply.outcome, reply.error.status)
        return {"type": "succeeded", "message": reply.message}, reply.outcome, 200

    # -- /v1/messages/batches
    def create_batch(self, environ: dict[str, Any]) -> Answer:
        body = _json_body(environ, self.batches.limits.max_batch_bytes)
        batch = self.batches.create(body, _betas(environ))
        return _json(200, batch.to_api(self._origin(environ), self.emulator.clock()))

    def list_batches(self, environ: dict[str, Any]) -> Answer:
        query = dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))
        limit = _limit(query.get("limit"))
        after, before = query.get("after_id"), query.get("before_id")
        if after is not None and before is not None:
            raise Path("before_id").says("only one of before_id and after_id may be given")
        page, more = self.batches.page(limit, after, before)
        origin, now = self._origin(environ), self.emulator.clock()
        data = [batch.to_api(origin, now) for batch in page]
        return _json(200, {"data": data, "has_more": more,
                           "first_id": data[0]["id"] if data else None,
                           "last_id": data[-1]["id"] if data else None})

    def retrieve_batch(self, environ: dict[str, Any], batch_id: str) -> Answer:
        batch = self.batches.get(batch_id)
        return _json(200, batch.to_api(self._origin(environ), self.emulator.clock()))

    def cancel_batch(self, environ: dict[str, Any], batch_id: str) -> Answer:
        _drain(environ)  # the SDK sends no body
        batch = self.batches.cancel(batch_id)
        return _json(200, batch.to_api(self._origin(environ), self.emulator.clock()))

    def delete_batch(self, environ: dict[str, Any], batch_id: str) -> Answer:
        return _json(200, self.batches.delete(batch_id))

    def batch_results(self, environ: dict[str, Any], batch_id: str) -> Answer:
        return 200, self.batches.results(batch_id), [("Content-Type", "application/x-jsonl")]

    # -- /_emulator/anthropic
    def control_executions(self, environ: dict[str, Any]) -> Answer:
        return _json(200, {"object": "emulator.executions", "executed": self.executions(),
                           "billed": self.executions(billed=True)})

    def control_log(self, environ: dict[str, Any]) -> Answer:
        def stream() -> Iterable[bytes]:
            yield b'{"object": "list", "data": ['
            for index, event in enumerate(self.log.iter_events()):
                yield (", " if index else "").encode() + json.dumps(event).encode()
            yield b"]}"
        return 200, stream(), [("Content-Type", "application/json")]

    def _origin(self, environ: dict[str, Any]) -> str:
        """scheme://host[:port][/base] the client used: results_url must point back at us
        (under the configured base path, less the /v1 the SDK adds)."""
        host = environ.get("HTTP_HOST") or f"{environ['SERVER_NAME']}:{environ['SERVER_PORT']}"
        base = self.emulator.config.base_path
        prefix = base.removesuffix("/v1") if base.endswith("/v1") else ""
        return f"{environ.get('wsgi.url_scheme', 'http')}://{host}{prefix}"


def _check_headers(environ: dict[str, Any]) -> None:
    bearer = environ.get("HTTP_AUTHORIZATION", "")
    key = environ.get("HTTP_X_API_KEY", "").strip() or (
        bearer[7:].strip() if bearer.startswith("Bearer ") else "")
    if not key:
        raise AnthropicError("authentication_error", "x-api-key header is required")
    version = environ.get("HTTP_ANTHROPIC_VERSION", "").strip()
    if not version:
        raise Path("anthropic-version").says("header is required")
    if not _VERSION.match(version):
        raise Path("anthropic-version").says(f"'{version}' is not a valid version (a date "
                                             "such as 2023-06-01)")


def _betas(environ: dict[str, Any]) -> frozenset[str]:
    return frozenset(b.strip() for b in environ.get("HTTP_ANTHROPIC_BETA", "").split(",")
                     if b.strip())


def _limit(raw: str | None) -> int:
    if raw is None:
        return 20
    try:
        limit = int(raw)
    except ValueError:
        raise Path("limit").wrong_type("integer") from None
    if not 1 <= limit <= 1000:
        raise Path("limit").says("Input should be between 1 and 1000")
    return limit


def _fault_error(fault: HttpFault) -> AnthropicError:
    kind = ERROR_TYPES.get(fault.status, "api_error")
    return AnthropicError(kind, TRANSIENT_MESSAGES.get(kind, "Internal server error"),
                          status=fault.status, headers=fault.retry_headers())


def _content_length(environ: dict[str, Any]) -> int:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise AnthropicError("invalid_request_error", "Invalid Content-Length header.") \
            from None


def _drain(environ: dict[str, Any]) -> None:
    """Read the unread body, so that a served connection ends cleanly."""
    _content_length(environ)  # a bad header is refused in Anthropic's shape first
    from .app import _drain as drain  # app.py imports this module: import at call time

    drain(environ)


def _json_body(environ: dict[str, Any], limit: int) -> Any:
    length = _content_length(environ)
    if length > limit:
        _drain(environ)
        raise AnthropicError("request_too_large", "Request exceeds the maximum allowed number "
                             f"of bytes ({limit:,}).")
    data = environ["wsgi.input"].read(length) if length else b""
    try:
        return json.loads(data)
    except ValueError:
        raise AnthropicError("invalid_request_error", "There was an issue with the format of "
                             "your request: the body is not valid JSON.") from None


def _json(status: int, obj: Any, headers: dict[str, str] | None = None) -> Answer:
    data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
    return status, [data], [("Content-Type", "application/json"),
                            ("Content-Length", str(len(data))), *(headers or {}).items()]
