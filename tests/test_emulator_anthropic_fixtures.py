"""Helpers and fixtures for the Anthropic dialect's tests (import what a test module uses).

Everything goes through the official `anthropic` SDK with strict response validation,
in-process (httpx2.WSGITransport) or over real HTTP on 127.0.0.1. This module holds no
tests itself.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import anthropic
import httpx2
import pytest
from anthropic.types.messages import MessageBatch

from runner.emulator import Emulator, start_in_thread

ROOT = "http://emulator.invalid"  # the in-process base URL (the SDK adds /v1 itself)
MODEL = "claude-haiku-4-5"


def sdk_client(base_url: str, **options: Any) -> anthropic.Anthropic:
    return anthropic.Anthropic(api_key="test-key", base_url=base_url,
                               _strict_response_validation=True, **options)


def inprocess_client(emu: Emulator, **options: Any) -> anthropic.Anthropic:
    return sdk_client(ROOT, http_client=httpx2.Client(transport=httpx2.WSGITransport(app=emu)),
                      **options)


def served_root(url: str) -> str:
    """The SDK's base URL for a served emulator (whose URL ends in /v1)."""
    return url.removesuffix("/v1")


def request(custom_id: str, user: str, *, model: str = MODEL, max_tokens: int = 400,
            system: str | None = "You tag videos.", **params: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"model": model, "max_tokens": max_tokens,
                            "messages": [{"role": "user", "content": user}], **params}
    if system is not None:
        body["system"] = system
    return {"custom_id": custom_id, "params": body}


def requests(count: int, prefix: str = "r", **params: Any) -> list[dict[str, Any]]:
    return [request(f"{prefix}{i}", f"Video {i}: a live concert in Berlin, music", **params)
            for i in range(count)]


def wait(client: anthropic.Anthropic, batch_id: str, timeout: float = 30.0) -> MessageBatch:
    """Poll until the batch has ended (an instant emulator ends it at the next read)."""
    deadline = time.monotonic() + timeout
    while (batch := client.messages.batches.retrieve(batch_id)).processing_status != "ended":
        assert time.monotonic() < deadline, f"{batch_id} stuck in {batch.processing_status}"
        time.sleep(0.02)
    return batch


def results(client: anthropic.Anthropic, batch_id: str) -> dict[str, Any]:
    """custom_id → result, read through the SDK's streaming JSONL decoder."""
    return {line.custom_id: line.result for line in client.messages.batches.results(batch_id)}


def run(client: anthropic.Anthropic, batch_requests: list[dict[str, Any]],
        **options: Any) -> tuple[MessageBatch, dict[str, Any]]:
    batch = client.messages.batches.create(requests=batch_requests, **options)
    ended = wait(client, batch.id)
    return ended, results(client, batch.id)


def text_of(message: Any) -> str:
    return "".join(block.text for block in message.content if block.type == "text")


@pytest.fixture(params=["in-process", "http"])
def claude(request: pytest.FixtureRequest, emulator: Emulator) -> Iterator[anthropic.Anthropic]:
    """The SDK against an instant emulator, in-process and over HTTP on 127.0.0.1."""
    if request.param == "in-process":
        yield inprocess_client(emulator)
    else:
        with start_in_thread(emulator) as server:
            yield sdk_client(served_root(server.url))


@pytest.fixture
def local(emulator: Emulator) -> anthropic.Anthropic:
    """The SDK against an instant emulator, in-process only (content-level tests)."""
    return inprocess_client(emulator)
