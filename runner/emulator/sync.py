"""The synchronous endpoints: POST /v1/chat/completions, /v1/responses, /v1/embeddings.

They answer at once with what a batch line would carry for the same body: the same
responder, so a request answered synchronously and in a batch has the same content and
`usage`. They honour the same faults: HTTP faults on their routes (app.py), and the
per-request rates in force (a failure is an HTTP 500/503, an invalid or truncated answer
is a 200 like in a batch; `status_zero_rate` has no synchronous form and answers normally).
Every call gets fresh draws, so a retried call can succeed.

Each answered call is a `request_executed` event (log.py) with `batch_id` null, keyed by
the request key batchrun gives the same request in a batch (`runner.keys.request_key`), so
tests count batch and synchronous executions of one request together.
"""

from __future__ import annotations

from typing import Any

from runner.keys import request_key

from . import azure, models
from .api_error import ApiError, bad_request, missing
from .faults import draw
from .responder import respond_with_faults

REQUIRED_INPUT = {"/v1/chat/completions": "messages", "/v1/responses": "input",
                  "/v1/embeddings": "input"}
RETRY_AFTER_MS = "10"  # on a 5xx fault, like the HTTP faults: retries need not wait


def answer_now(service: Any, endpoint: str, params: dict[str, Any], *,
               azure_call: azure.AzureCall | None = None) -> tuple[int, Any, dict[str, str]]:
    """(HTTP status, body, headers) of a synchronous call; ApiError when it is refused
    before anything runs (nothing is then logged)."""
    model = _model(endpoint, params, service.config.azure_deployments, azure_call)
    body = params if params.get("model") == model else {**params, "model": model}
    key = request_key(endpoint, params)
    with service.locked():
        now = service.clock()
        rates = {**service.faults.per_batch(), "status_zero_rate": 0.0}
        service.counters.sync_calls += 1
        call = service.counters.sync_calls

        def chance(kind: str) -> float:  # negative ordinals: never a batch's draws
            return draw(rates["seed"], -call, key, kind)

        reply = respond_with_faults(endpoint, body, when=now, rates=rates, chance=chance)
        service.log.append({"event": "request_executed", "time": now, "batch_id": None,
                            "endpoint": endpoint, "custom_id": key,
                            "status_code": reply.status_code, "outcome": reply.outcome,
                            "billed": reply.status_code == 200})
    if endpoint == "/v1/responses" and reply.status_code == 200:
        # The synchronous Response object has this count (the SDK requires it); the
        # bodies in real batch output files do not.
        reply.body["usage"]["input_tokens_details"].setdefault("cache_write_tokens", 0)
    headers = {"retry-after-ms": RETRY_AFTER_MS} if reply.status_code >= 500 else {}
    return reply.status_code, reply.body, headers


def _model(endpoint: str, params: dict[str, Any], deployments: dict[str, str],
           azure_call: azure.AzureCall | None) -> str:
    """The model that answers; refuses what the real endpoint refuses before running."""
    deployment = azure_call.deployment if azure_call is not None else None
    name = deployment or params.get("model")  # Azure: the URL's deployment wins
    if not name:
        raise bad_request("you must provide a model parameter")
    if REQUIRED_INPUT[endpoint] not in params:
        raise missing(REQUIRED_INPUT[endpoint])
    if params.get("stream") is True:
        raise bad_request("The batchrun emulator does not stream: send the request without "
                          "`stream: true`.", param="stream")
    if azure_call is not None:
        model = azure.deployment_model(name, endpoint, deployments)
        if model is None:
            raise azure.deployment_not_found()
        return model
    if not isinstance(name, str) or not models.is_known(name, endpoint):
        raise ApiError(404, f"The model `{name}` does not exist or you do not have access to "
                       "it.", code="model_not_found")
    return name
