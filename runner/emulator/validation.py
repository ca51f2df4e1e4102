"""Checking a batch input file the way the real service does while a batch is `validating`.

A file that breaks a rule fails the whole batch, with one entry per offending line in
`errors.data` ({code, line, message, param}). Codes and messages follow what the real
service was seen to return (invalid_json_line, missing_required_parameter, invalid_url,
streaming_unsupported, model_not_found, duplicate_custom_id); the codes of the rules no
public trace shows (mismatched_model, empty_file, too_many_requests, file_too_large) are
the emulator's own.

The file is read once, line by line: only the byte offset of each request line is kept,
so executing request n later is a seek, not a list of 50,000 parsed bodies.
"""

from __future__ import annotations

import json
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import tokens

from . import azure, models
from .config import EmulatorConfig

MAX_REPORTED_ERRORS = 100
_REQUIRED_INPUT = {"/v1/chat/completions": "messages", "/v1/responses": "input",
                   "/v1/embeddings": "input"}
_STREAMING_NAME = {"/v1/chat/completions": "Chat Completions", "/v1/responses": "Responses"}


@dataclass
class InputScan:
    errors: list[dict[str, Any]] = field(default_factory=list)
    offsets: array = field(default_factory=lambda: array("q"))  # of request lines, file order
    custom_ids: list[str] = field(default_factory=list)
    model: str | None = None
    prompt_tokens: int = 0

    def add(self, code: str, message: str, *, line: int | None = None,
            param: str | None = None) -> None:
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append({"code": code, "line": line, "message": message, "param": param})


def scan_input(path: Path, endpoint: str, config: EmulatorConfig, *,
               count_tokens: bool = False,
               deployments: dict[str, str] | None = None) -> InputScan:
    """`deployments`: an Azure batch, whose lines name a deployment ({name: model}) and
    may spell their url without /v1 (azure.py)."""
    scan = InputScan()
    size = path.stat().st_size
    if size > config.max_batch_bytes:
        scan.add("file_too_large", f"The batch input file is {size:,} bytes; a batch input "
                 f"file may be at most {config.max_batch_bytes:,} bytes.")
        return scan
    seen: set[str] = set()
    offset = 0
    with path.open("rb") as fh:
        for number, raw in enumerate(fh, start=1):
            start, offset = offset, offset + len(raw)
            if not raw.strip():
                continue
            if len(scan.offsets) == config.max_requests_per_batch:
                scan.add("too_many_requests", "The batch input file has more than the "
                         f"{config.max_requests_per_batch:,} requests a batch may contain.",
                         line=number)
                break
            scan.offsets.append(start)
            try:
                request = json.loads(raw)
            except ValueError:
                request = None
            if not isinstance(request, dict):
                scan.add("invalid_json_line", "This line is not parseable as valid JSON.",
                         line=number)
                continue
            custom_id = request.get("custom_id")
            if isinstance(custom_id, str):
                scan.custom_ids.append(custom_id)
            problem = _line_problem(request, endpoint, deployments) or \
                _batch_problem(request, scan, seen)
            if problem:
                scan.add(problem[0], problem[1], line=number, param=problem[2])
            elif count_tokens:
                body = request["body"]
                if deployments is not None:
                    body = {**body, "model": azure.deployment_model(body["model"], endpoint,
                                                                    deployments)}
                scan.prompt_tokens += tokens.prompt_tokens(endpoint, body).tokens
    if not scan.offsets and not scan.errors:
        scan.add("empty_file", "The batch input file is empty: it contains no requests.")
    return scan


def _line_problem(request: dict[str, Any], endpoint: str,
                  deployments: dict[str, str] | None) -> tuple[str, str, str | None] | None:
    for name in ("custom_id", "method", "url", "body"):
        if name not in request:
            return ("missing_required_parameter", f"Missing required parameter: '{name}'.",
                    name)
    if not isinstance(request["custom_id"], str):
        return "invalid_type", "Invalid type for 'custom_id': expected a string.", "custom_id"
    if request["method"] != "POST":
        return ("invalid_value", f"Invalid value: '{request['method']}'. Supported values "
                "are: 'POST'.", "method")
    url = request["url"]
    if deployments is not None and isinstance(url, str):
        url = azure.own_endpoint(url)
    if url != endpoint:
        return ("invalid_url", "The URL provided for this request does not match the batch "
                "endpoint.", "url")
    body = request["body"]
    if not isinstance(body, dict):
        return "invalid_type", "Invalid type for 'body': expected an object.", "body"
    if "model" not in body:
        return "invalid_request", "Model parameter is required.", "body.model"
    required = _REQUIRED_INPUT[endpoint]
    if required not in body:
        return "invalid_request", f"{required.capitalize()} parameter is required.", \
            f"body.{required}"
    if body.get("stream") is True and endpoint in _STREAMING_NAME:
        return ("streaming_unsupported", f"{_STREAMING_NAME[endpoint]}: Streaming is not "
                "supported in the Batch API.", "body.stream")
    model = body["model"]
    if deployments is not None:
        if azure.deployment_model(model, endpoint, deployments) is None:
            return ("model_not_found", f"The provided model deployment '{model}' does not "
                    "exist in this resource.", "body.model")
    elif not isinstance(model, str) or not models.is_known(model, endpoint):
        return ("model_not_found", f"The provided model '{model}' is not supported by the "
                "Batch API.", "body.model")
    return None


def _batch_problem(request: dict[str, Any], scan: InputScan,
                   seen: set[str]) -> tuple[str, str, str | None] | None:
    custom_id = request["custom_id"]
    if custom_id in seen:
        return ("duplicate_custom_id", "The custom_id for this request is a duplicate of "
                "another request. The custom_id parameter must be unique for each request in "
                "a batch.", "custom_id")
    seen.add(custom_id)
    model = request["body"]["model"]
    if scan.model is None:
        scan.model = model
    elif model != scan.model:
        return ("mismatched_model", f"This request uses model '{model}' but an earlier "
                f"request uses '{scan.model}'. All requests in a batch must use the same "
                "model.", "body.model")
    return None


def line_offsets(path: Path) -> array:
    """The offsets of the request lines of a file that passed `scan_input`."""
    offsets = array("q")
    offset = 0
    with path.open("rb") as fh:
        for raw in fh:
            if raw.strip():
                offsets.append(offset)
            offset += len(raw)
    return offsets
