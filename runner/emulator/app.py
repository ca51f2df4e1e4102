"""The emulator as a WSGI application: routing, auth, JSON errors and injected HTTP faults.

    emu = Emulator(state_dir=None, config=EmulatorConfig.instant())
    client = openai.OpenAI(api_key="test", base_url="http://emulator.invalid/v1",
                           http_client=httpx2.Client(transport=httpx2.WSGITransport(app=emu)))

Routes under /v1 are the real protocol and need a bearer token (any): Files, Batches, and
the synchronous chat completions, responses and embeddings (sync.py). The same routes
answer in the Azure layout under /openai (azure.py, with an `api-key`), and under another
base path than /v1 if configured. Routes under /_emulator are the emulator's own controls
and need none:

    GET  /_emulator/health   {"status": "ok", "pid", "restarted", "files", "batches"}
    GET  /_emulator/faults   {"faults": <Faults JSON>, "left": <counters>}
    POST /_emulator/faults   replace the faults (body: Faults JSON); answers like GET
    GET  /_emulator/log      {"object": "list", "data": [<event>, ...]} (see log.py)
    GET  /_emulator/executions  {"executed": {custom_id: n}, "billed": {custom_id: n}}
"""

from __future__ import annotations

import json
import os
import re
import sys
import tempfile
import time
import traceback
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl

from . import azure, ids
from .anthropic_app import PREFIXES as ANTHROPIC_PATHS
from .anthropic_app import AnthropicDialect
from .api_error import ApiError, bad_request
from .config import EmulatorConfig
from .faults import Faults, HttpFault
from .log import RequestLog
from .multipart import read_form
from .service import BatchService
from .sync import answer_now

_ROUTES: list[tuple[str, re.Pattern[str], str]] = [
    (method, re.compile(pattern), name) for method, pattern, name in [
        ("POST", r"/v1/files", "create_file"),
        ("GET", r"/v1/files", "list_files"),
        ("GET", r"/v1/files/(?P<id>[^/]+)", "retrieve_file"),
        ("DELETE", r"/v1/files/(?P<id>[^/]+)", "delete_file"),
        ("GET", r"/v1/files/(?P<id>[^/]+)/content", "file_content"),
        ("POST", r"/v1/batches", "create_batch"),
        ("GET", r"/v1/batches", "list_batches"),
        ("GET", r"/v1/batches/(?P<id>[^/]+)", "retrieve_batch"),
        ("POST", r"/v1/batches/(?P<id>[^/]+)/cancel", "cancel_batch"),
        ("POST", r"(?P<endpoint>/v1/(?:chat/completions|responses|embeddings))", "answer_now"),
        ("GET", r"/_emulator/health", "control_health"),
        ("GET", r"/_emulator/faults", "control_faults"),
        ("POST", r"/_emulator/faults", "control_set_faults"),
        ("GET", r"/_emulator/log", "control_log"),
        ("GET", r"/_emulator/executions", "control_executions"),
    ]]
_FAULT_ERRORS = {
    429: ("Rate limit reached for requests. Please try again later.", "requests",
          "rate_limit_exceeded"),
    500: ("The server had an error while processing your request. Sorry about that!",
          "server_error", None),
    502: ("Bad gateway.", "server_error", None),
    503: ("The server is overloaded or not ready yet.", "server_error", None),
    504: ("Gateway timeout.", "server_error", None),
    529: ("The server is overloaded or not ready yet.", "server_error", None),
}
_NO_KEY = ("You didn't provide an API key. You need to provide your API key in an "
           "Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).")


class EmulatorCrashed(ConnectionError):
    """Raised in-process where a served emulator would die without answering."""


@dataclass
class Response:
    status: int
    body: Iterable[bytes]
    headers: list[tuple[str, str]] = field(default_factory=list)

    @classmethod
    def json(cls, status: int, obj: Any, headers: dict[str, str] | None = None) -> Response:
        data = json.dumps(obj, ensure_ascii=False).encode("utf-8")
        return cls(status, [data], [("Content-Type", "application/json"),
                                    ("Content-Length", str(len(data))),
                                    *(headers or {}).items()])


class Emulator:
    """The OpenAI Files + Batches API emulator (a WSGI app)."""

    def __init__(self, state_dir: Path | None = None, config: EmulatorConfig | None = None, *,
                 faults: Faults | None = None, clock: Callable[[], float] | None = None):
        self.state_dir = Path(state_dir) if state_dir is not None else None
        self.config = config or EmulatorConfig.instant()
        self.clock = clock or time.time
        self.restarted = False
        self.on_crash: Callable[[], None] | None = None  # served: end the process
        self._scratch: tempfile.TemporaryDirectory[str] | None = None
        self.service = self._open(faults or Faults())
        self.anthropic = AnthropicDialect(self)  # /v1/messages… (docs/emulator-anthropic.md)

    def _open(self, faults: Faults) -> BatchService:
        if self.state_dir is None:
            self._scratch = tempfile.TemporaryDirectory(prefix="batchrun-emulator-")
            root = Path(self._scratch.name)
        else:
            root = self.state_dir
        self.root = root
        return BatchService(root, self.config, self.clock, faults)

    @property
    def faults(self) -> Faults:
        return self.service.faults

    @faults.setter
    def faults(self, faults: Faults) -> None:
        """Replace the faults; their counters start again. Batches keep the rates they
        were created with."""
        self.service.set_faults(faults)

    @property
    def log(self) -> RequestLog:
        return self.service.log

    def executions(self, *, billed: bool | None = None) -> Counter[str]:
        """How many times each request (custom_id) was executed here, in batches and by
        synchronous calls; `billed=True`: only the billed executions (a 200 answer)."""
        self.service.refresh()
        return self.log.executions(billed=billed)

    def restart(self) -> None:
        """What a crash and a restart do: drop all memory and reload from the state dir
        (without one, everything is lost). The faults and their counters carry over."""
        with self.service.lock:
            faults, counters = self.service.faults, self.service.counters
            old_scratch, old_service = self._scratch, self.service
            old_service.close()
            self.service = self._open(faults)
            self.service.counters = counters
            self.anthropic = AnthropicDialect(self)
            self.restarted = True
            if old_scratch is not None:
                old_scratch.cleanup()

    def close(self) -> None:
        self.service.close()
        if self._scratch is not None:
            self._scratch.cleanup()

    # -- WSGI
    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]):
        response = self.handle(environ)
        start_response(f"{response.status} {_reason(response.status)}",
                       response.headers + [("x-request-id", ids.api_request_id()),
                                           ("openai-version", "2020-10-01")])
        return response.body

    def handle(self, environ: dict[str, Any]) -> Response:
        method = environ["REQUEST_METHOD"].upper()
        path = own = environ.get("PATH_INFO", "") or "/"
        try:
            own = self._own_path(method, path, environ)
            response = self._route(method, own, environ)
        except ApiError as err:
            response = Response.json(err.status, err.body(), err.headers)
        except Exception:  # a bug in the emulator: answer like the real service's 500
            traceback.print_exc(file=environ.get("wsgi.errors", sys.stderr))
            response = Response.json(500, ApiError(500, _FAULT_ERRORS[500][0],
                                                   type="server_error").body())
        if own.startswith(("/v1/", azure.PREFIX)):  # an API call, not a control
            self._maybe_crash()
        return response

    def _own_path(self, method: str, path: str, environ: dict[str, Any]) -> str:
        """The emulator's own path (/v1/…) of a call in the Azure layout, or in the OpenAI
        layout under the configured base path."""
        if path.startswith(azure.PREFIX):
            call = azure.translate(path, _query(environ))
            environ[azure.DIALECT_KEY] = call
            return call.path
        base = self.config.base_path
        if base == "/v1" or path.startswith("/_emulator/"):
            return path
        if path.startswith(base + "/"):
            return "/v1" + path[len(base):]
        raise ApiError(404, f"Invalid URL ({method} {path}): this emulator serves the OpenAI "
                       f"API under {base}")

    def _route(self, method: str, path: str, environ: dict[str, Any]) -> Response:
        if path.startswith(ANTHROPIC_PATHS):  # Anthropic's API: its own auth and errors
            return Response(*self.anthropic.handle(method, path, environ))
        found = next(((match, name) for verb, pattern, name in _ROUTES
                      if verb == method and (match := pattern.fullmatch(path))), None)
        if found is None:
            raise ApiError(404, f"Invalid URL ({method} {path})")
        match, handler = found
        args = match.groupdict()
        if handler.startswith("control_"):
            return getattr(self, handler)(environ)
        auth = environ.get("HTTP_AUTHORIZATION", "")
        if azure.DIALECT_KEY in environ:
            azure.check_key(environ)
        elif not auth.startswith("Bearer ") or not auth[7:].strip():
            raise ApiError(401, _NO_KEY)
        fault = self._take_http_fault(method, path, after=False)
        if fault:
            _drain(environ)
            raise _fault_error(fault)
        response = getattr(self, handler)(environ, **args)
        fault = self._take_http_fault(method, path, after=True)
        if fault:
            raise _fault_error(fault)
        return response

    def _take_http_fault(self, method: str, path: str, *, after: bool) -> HttpFault | None:
        with self.service.lock:
            counters = self.service.counters
            for index, fault in enumerate(self.service.faults.http):
                if fault.after == after and counters.http_left[index] > 0 \
                        and fault.matches(method, path):
                    counters.http_left[index] -= 1
                    return fault
        return None

    def _maybe_crash(self) -> None:
        with self.service.lock:
            counters = self.service.counters
            if counters.calls_before_crash is None:
                return
            if counters.calls_before_crash > 0:
                counters.calls_before_crash -= 1
                return
            counters.calls_before_crash = None
        if self.on_crash is not None:
            self.on_crash()
        self.restart()
        raise EmulatorCrashed("the emulator crashed (crash_after_calls) before answering")

    # -- /v1/files
    def create_file(self, environ: dict[str, Any]) -> Response:
        target = self.service.state.temp_path()
        try:
            form = read_form(environ["wsgi.input"], _content_length(environ),
                             environ.get("CONTENT_TYPE", ""), target,
                             self.config.max_upload_bytes)
            expiry = {key[len("expires_after["):-1]: value for key, value in form.fields.items()
                      if key.startswith("expires_after[")}
            return Response.json(200, self.service.create_file(
                form.fields.get("purpose"), form.filename, target, expiry))
        finally:
            target.unlink(missing_ok=True)

    def list_files(self, environ: dict[str, Any]) -> Response:
        return Response.json(200, self.service.list_files(_query(environ)))

    def retrieve_file(self, environ: dict[str, Any], id: str) -> Response:
        return Response.json(200, self.service.get_file(id).to_api())

    def delete_file(self, environ: dict[str, Any], id: str) -> Response:
        return Response.json(200, self.service.delete_file(id))

    def file_content(self, environ: dict[str, Any], id: str) -> Response:
        body = self.service.download(id)
        return Response(200, body.chunks, [("Content-Type", body.content_type),
                                           ("Content-Length", str(body.length))])

    # -- /v1/batches
    def create_batch(self, environ: dict[str, Any]) -> Response:
        params = _json_body(environ)
        if not isinstance(params, dict):
            raise bad_request("The body of a batch creation must be a JSON object.")
        return Response.json(200, self.service.create_batch(
            params, azure=azure.DIALECT_KEY in environ))

    def list_batches(self, environ: dict[str, Any]) -> Response:
        return Response.json(200, self.service.list_batches(_query(environ)))

    def retrieve_batch(self, environ: dict[str, Any], id: str) -> Response:
        return Response.json(200, self.service.retrieve_batch(id))

    def cancel_batch(self, environ: dict[str, Any], id: str) -> Response:
        _json_body(environ)  # the SDK sends an empty body; anything it sends is ignored
        return Response.json(200, self.service.cancel_batch(id))

    # -- /v1/chat/completions, /v1/responses, /v1/embeddings: answered at once (sync.py)
    def answer_now(self, environ: dict[str, Any], endpoint: str) -> Response:
        params = _json_body(environ)
        if not isinstance(params, dict):
            raise bad_request("The body of a request must be a JSON object.")
        status, body, headers = answer_now(self.service, endpoint, params,
                                           azure_call=environ.get(azure.DIALECT_KEY))
        return Response.json(status, body, headers)

    # -- /_emulator
    def control_health(self, environ: dict[str, Any]) -> Response:
        state = self.service.state
        return Response.json(200, {"status": "ok", "pid": os.getpid(),
                                   "restarted": self.restarted, "files": len(state.files),
                                   "batches": len(state.batches),
                                   "config": self.config.to_json()})

    def control_faults(self, environ: dict[str, Any]) -> Response:
        with self.service.lock:
            return Response.json(200, {"faults": self.service.faults.to_json(),
                                       "left": self.service.counters.to_json()})

    def control_set_faults(self, environ: dict[str, Any]) -> Response:
        try:
            self.faults = Faults.from_json(_json_body(environ))
        except ValueError as err:
            raise bad_request(str(err)) from None
        return self.control_faults(environ)

    def control_log(self, environ: dict[str, Any]) -> Response:
        self.service.refresh()
        return Response(200, _json_list(self.log.iter_events()),
                        [("Content-Type", "application/json")])

    def control_executions(self, environ: dict[str, Any]) -> Response:
        return Response.json(200, {"object": "emulator.executions",
                                   "executed": self.executions(),
                                   "billed": self.executions(billed=True)})


def _reason(status: int) -> str:
    """The reason phrase; 529 (Anthropic's "overloaded") is in no standard."""
    return "Overloaded" if status == 529 else HTTPStatus(status).phrase


def _fault_error(fault: HttpFault) -> ApiError:
    message, kind, code = _FAULT_ERRORS[fault.status]
    return ApiError(fault.status, message, type=kind, code=code,
                    headers=fault.retry_headers())


def _content_length(environ: dict[str, Any]) -> int:
    try:
        return int(environ.get("CONTENT_LENGTH") or 0)
    except ValueError:
        raise bad_request("Invalid Content-Length header.") from None


def _drain(environ: dict[str, Any]) -> None:
    """Read the unread body, so that a served connection ends cleanly."""
    left = _content_length(environ)
    while left > 0:
        chunk = environ["wsgi.input"].read(min(left, 1 << 16))
        if not chunk:
            break
        left -= len(chunk)


def _json_body(environ: dict[str, Any]) -> Any:
    length = _content_length(environ)
    data = environ["wsgi.input"].read(length) if length else b""
    if not data.strip():
        return {}
    try:
        return json.loads(data)
    except ValueError:
        raise bad_request("We could not parse the JSON body of your request. (HINT: This "
                          "likely means you aren't using your HTTP library correctly.)") from None


def _query(environ: dict[str, Any]) -> dict[str, str]:
    return dict(parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True))


def _json_list(items: Iterable[Any]) -> Iterable[bytes]:
    """`{"object": "list", "data": [...]}`, streamed item by item."""
    yield b'{"object": "list", "data": ['
    for index, item in enumerate(items):
        yield (", " if index else "").encode() + json.dumps(item, ensure_ascii=False).encode()
    yield b"]}"
