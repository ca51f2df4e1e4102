"""Shared helpers and fixtures for the emulator's tests (import what a test module uses).

Everything goes through the real `openai` SDK with strict response validation, either
in-process (httpx2.WSGITransport) or over real HTTP on 127.0.0.1.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest

from runner.emulator import Emulator, EmulatorConfig, Faults, RunningServer, start_in_thread

REAL = Path(__file__).parent / "data" / "openai-batch-real"
ROOT = Path(__file__).parent.parent
TERMINAL = {"completed", "failed", "expired", "cancelled"}
PACED = EmulatorConfig(validating_seconds=10, seconds_per_request=1, finalizing_seconds=10,
                       cancelling_seconds=10)


class FakeClock:
    """The emulator's clock, moved by the test: no sleeping, no timing assertions."""

    def __init__(self, start: float = 1_767_225_600.0):
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def sdk_client(base_url: str, **options: Any) -> openai.OpenAI:
    return openai.OpenAI(api_key="test", base_url=base_url, _strict_response_validation=True,
                         **options)


def inprocess_client(emu: Emulator, **options: Any) -> openai.OpenAI:
    return sdk_client("http://emulator.invalid/v1",
                      http_client=httpx2.Client(transport=httpx2.WSGITransport(app=emu)),
                      **options)


def chat_request(custom_id: str, user: str, *, model: str = "gpt-4o-mini",
                 system: str = "You tag videos.", **params: Any) -> dict[str, Any]:
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions",
            "body": {"model": model, "messages": [{"role": "system", "content": system},
                                                  {"role": "user", "content": user}],
                     **params}}


def chat_requests(count: int, prefix: str = "r", **params: Any) -> list[dict[str, Any]]:
    return [chat_request(f"{prefix}{i}", f"Video {i}: a live concert in Berlin, music",
                         **params) for i in range(count)]


def jsonl(requests: list[Any]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in requests).encode("utf-8")


def upload(client: openai.OpenAI, requests: list[Any] | bytes, name: str = "input.jsonl") -> str:
    data = requests if isinstance(requests, bytes) else jsonl(requests)
    return client.files.create(file=(name, data), purpose="batch").id


def submit(client: openai.OpenAI, requests: list[Any] | bytes, *,
           endpoint: str = "/v1/chat/completions", **options: Any) -> openai.types.Batch:
    return client.batches.create(input_file_id=upload(client, requests), endpoint=endpoint,
                                 completion_window="24h", **options)


def wait(client: openai.OpenAI, batch_id: str, timeout: float = 30.0) -> openai.types.Batch:
    deadline = time.monotonic() + timeout
    while (batch := client.batches.retrieve(batch_id)).status not in TERMINAL:
        assert time.monotonic() < deadline, f"{batch_id} stuck in {batch.status}"
        time.sleep(0.05)
    return batch


def read_lines(client: openai.OpenAI, file_id: str | None) -> list[dict[str, Any]]:
    if file_id is None:
        return []
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def run_batch(client: openai.OpenAI, requests: list[Any] | bytes, **options: Any
              ) -> tuple[openai.types.Batch, list[dict[str, Any]], list[dict[str, Any]]]:
    """Submit, wait for a terminal state, and return the batch, output and error lines."""
    batch = wait(client, submit(client, requests, **options).id)
    return batch, read_lines(client, batch.output_file_id), read_lines(client, batch.error_file_id)


def real_lines(relative: str) -> list[dict[str, Any]]:
    with (REAL / relative).open(encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def shape(value: Any) -> Any:
    """The key structure of a JSON value (keys and kinds, not values)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value else []
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, (int, float)):
        return "number"
    return "null" if value is None else type(value).__name__


@contextlib.contextmanager
def running_emulator(state_dir: Path | None = None, config: EmulatorConfig | None = None,
                     faults: Faults | None = None) -> Iterator[RunningServer]:
    """An emulator served on 127.0.0.1 from a thread (port 0): `.url` is its base URL,
    `.emulator` the app (set `.faults`, read `.executions()`, `.log.iter_events()`)."""
    emu = Emulator(state_dir=state_dir, config=config or EmulatorConfig.instant(),
                   faults=faults)
    try:
        with start_in_thread(emu) as server:
            yield server
    finally:
        emu.close()


class EmulatorProcess:
    """`python -m runner.emulator ...` in its own process group; its URL read from stdout."""

    def __init__(self, *args: str):
        self.process = subprocess.Popen(
            [sys.executable, "-m", "runner.emulator", "--host", "127.0.0.1", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
            start_new_session=True)
        line = self.process.stdout.readline()  # type: ignore[union-attr]
        match = re.search(r"(http://\S+/v1)", line)
        if not match:
            if self.process.poll() is None:
                os.killpg(self.process.pid, signal.SIGKILL)
            _, stderr = self.process.communicate(timeout=10)
            raise AssertionError(f"no URL from the emulator: {line!r} {stderr}")
        self.url = match.group(1)

    def kill(self) -> None:
        """SIGKILL the whole process group (a supervisor and its server)."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=10)
        for stream in (self.process.stdout, self.process.stderr):
            if stream:
                stream.close()

    def __enter__(self) -> EmulatorProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()


@pytest.fixture
def new_emulator() -> Iterator[Callable[..., Emulator]]:
    """Make emulators (same arguments as Emulator); they are closed after the test."""
    made: list[Emulator] = []

    def make(*args: Any, **kwargs: Any) -> Emulator:
        made.append(Emulator(*args, **kwargs))
        return made[-1]

    yield make
    for emu in made:
        emu.close()


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emu = Emulator(state_dir=None, config=EmulatorConfig.instant())
    yield emu
    emu.close()


@pytest.fixture(params=["in-process", "http"])
def client(request: pytest.FixtureRequest, emulator: Emulator) -> Iterator[openai.OpenAI]:
    """The SDK against an instant emulator, in-process and over HTTP on 127.0.0.1."""
    if request.param == "in-process":
        yield inprocess_client(emulator)
    else:
        with start_in_thread(emulator) as server:
            assert server.emulator is emulator
            yield sdk_client(server.url)


@pytest.fixture
def local(emulator: Emulator) -> openai.OpenAI:
    """The SDK against an instant emulator, in-process only (for content-level tests)."""
    return inprocess_client(emulator)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def paced(clock: FakeClock) -> Iterator[Emulator]:
    """An emulator that takes 10 s to validate, 1 s per request, 10 s to finalize or cancel,
    on a clock the test moves."""
    emu = Emulator(state_dir=None, config=PACED, clock=clock)
    yield emu
    emu.close()


@pytest.fixture
def paced_client(paced: Emulator) -> openai.OpenAI:
    return inprocess_client(paced)
