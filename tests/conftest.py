"""Shared fixtures: a throw-away batchrun project with an embedded Qdrant, run through the
real CLI; the emulator in-process or over real HTTP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result
from emulator_fixtures import FakeClock
from forked import Forked
from qdrant_client import QdrantClient, models

from runner.cli import cli
from runner.demo import sample_videos
from runner.emulator import Emulator, EmulatorConfig, Faults, RunningServer, start_in_thread
from runner.provider.config import state_subdir
from runner.spec import ProviderConfig

STARTER = Path(__file__).resolve().parent.parent / "runner" / "data" / "project"


def _one_inference_parser_per_process() -> None:
    """Every QdrantClient() builds a parser of qdrant-client's inference models (Document,
    Image) by deep-copying their JSON schemas, ≈20 ms whether or not inference is used; the
    suite opens about 900 clients in-process (each batchrun command one, each look at the
    collection one), and that copy was its largest single cost (profiled: 33 of 277 s). The
    parser only caches what it learns of each model, the same for every client, so each
    test process (and the batchrun processes it forks, tests/forked.py) shares one. The
    engine itself is untouched; batchrun started as a fresh process builds its own, as
    users' does."""
    from qdrant_client import qdrant_client as client_module
    from qdrant_client.embed.schema_parser import ModelSchemaParser
    from qdrant_client.embed.type_inspector import Inspector

    shared = ModelSchemaParser()

    class SharedParserInspector(Inspector):
        def __init__(self, parser: ModelSchemaParser | None = None) -> None:
            super().__init__(parser or shared)

    client_module.Inspector = SharedParserInspector   # type: ignore[misc]


def _one_tls_context_per_process() -> None:
    """The SDKs' HTTP client (httpx2) loads the system's CA bundle into a new TLS context
    for every client, ≈35 ms (profiled: 14 s of the suite), though no test speaks TLS
    (everything is http://127.0.0.1). A context serves any number of clients, so each test
    process loads it once."""
    import functools

    import httpcore2

    httpcore2.default_ssl_context = functools.cache(httpcore2.default_ssl_context)


_one_inference_parser_per_process()
_one_tls_context_per_process()


class Project:
    """A project folder plus helpers to edit it, seed it, and run batchrun in it."""

    def __init__(self, root: Path, provider: dict[str, Any]):
        self.root = root
        self.provider = provider
        # The tags job alone: tests add the jobs they need (the starter's embed.yaml needs
        # a vector the collections seeded here lack).
        (root / "jobs").mkdir(parents=True)
        shutil.copy(STARTER / "jobs" / "tags.yaml", root / "jobs" / "tags.yaml")
        shutil.copytree(STARTER / "prompts", root / "prompts")
        self.write_config()

    @property
    def state(self) -> Path:
        """The provider's state directory (the emulator keeps its own inside .batchrun, and
        so do the providers but OpenAI: runner/provider/config.py)."""
        base = self.root / ".batchrun"
        sub = state_subdir(ProviderConfig(**self.provider))
        return base / sub if sub else base

    def manifest(self) -> dict:
        return json.loads((self.state / "manifest.json").read_text())

    def write_config(self, **extra: Any) -> None:
        config = {"qdrant": {"path": ".qdrant"}, "provider": self.provider, **extra}
        self.write("batchrun.yaml", json.dumps(config, indent=2))

    def write(self, rel: str, text: str) -> Path:
        path = self.root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
        return path

    def edit(self, rel: str, old: str, new: str) -> None:
        path = self.root / rel
        text = path.read_text(encoding="utf-8")
        assert old in text, f"{old!r} not in {rel}"
        path.write_text(text.replace(old, new), encoding="utf-8")

    @contextlib.contextmanager
    def qdrant(self) -> Iterator[QdrantClient]:
        """The embedded Qdrant (closed afterwards: one process may hold it at a time)."""
        client = QdrantClient(path=str(self.root / ".qdrant"))
        try:
            yield client
        finally:
            client.close()

    def seed(self, count: int = 40, start: int = 0, collection: str = "videos") -> None:
        """Sample videos start+1 … start+count as points with those ids (the sample is
        sorted US, GB, CA, FR: 120, 60, 60, 60)."""
        videos = list(sample_videos())[start:start + count]
        with self.qdrant() as client:
            if not client.collection_exists(collection):
                client.create_collection(collection, vectors_config={})
            client.upsert(collection, points=[
                models.PointStruct(id=start + i + 1, vector={}, payload=v)
                for i, v in enumerate(videos)])

    def payloads(self, collection: str = "videos") -> dict[Any, dict]:
        with self.qdrant() as client:
            records, _ = client.scroll(collection, limit=100_000, with_payload=True)
        return {r.id: r.payload for r in records}

    def run(self, *args: str, expect: int | None = 0) -> Result:
        result = CliRunner().invoke(cli, ["-C", str(self.root), *args], catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, (
                f"batchrun {' '.join(args)} exited {result.exit_code}, expected {expect}\n"
                f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
        return result

    def run_json(self, *args: str, expect: int | None = 0) -> Any:
        return json.loads(self.run(*args, "--json", expect=expect).stdout)

    def spawn(self, *args: str, crash_at: str | None = None) -> Forked:
        """batchrun in a process of its own (to kill it), with the test's environment:
        forked from this one, which has imported everything already (tests/forked.py)."""
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        env.pop("BATCHRUN_CRASH_AT", None)
        if crash_at:
            env["BATCHRUN_CRASH_AT"] = crash_at
        return Forked(["-C", str(self.root), *args], env)


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A project on the in-process emulator (instant), its own embedded Qdrant."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return Project(tmp_path / "project", {"name": "emulator", "emulator_speed": "instant",
                                          "poll_interval": 0.01})


class CountingApp:
    """The emulator app, counting the HTTP calls it is sent (method, path)."""

    def __init__(self, app: Emulator):
        self.app = app
        self.calls: Counter[tuple[str, str]] = Counter()

    def __call__(self, environ: dict, start_response: Any) -> Any:
        self.calls[(environ["REQUEST_METHOD"], environ["PATH_INFO"])] += 1
        return self.app(environ, start_response)

    def posts(self) -> int:
        return sum(n for (method, path), n in self.calls.items()
                   if method == "POST" and not path.startswith("/_emulator"))


class HttpEmulator:
    """The emulator on 127.0.0.1, with what tests read from it."""

    def __init__(self, server: RunningServer, counting: CountingApp):
        self.url = server.url
        self.emulator: Emulator = counting.app
        self.counting = counting

    def batches_created(self) -> list[dict]:
        return [e for e in self.emulator.log.events if e["event"] == "batch_created"]

    def sent_keys(self) -> list[str]:
        """Every custom_id put into a batch, once per batch it was in."""
        return [key for e in self.batches_created() for key in e["custom_ids"]]


@pytest.fixture
def serve_emulator(tmp_path: Path) -> Iterator[Any]:
    """Start emulators served over real HTTP on 127.0.0.1 (threads, port 0)."""
    started: list[tuple[RunningServer, Emulator]] = []

    def start(config: EmulatorConfig | None = None, faults: Faults | None = None,
              clock: Any = None) -> HttpEmulator:
        emulator = Emulator(state_dir=tmp_path / f"emulator-state-{len(started)}",
                            config=config or EmulatorConfig.instant(), faults=faults, clock=clock)
        counting = CountingApp(emulator)
        server = start_in_thread(counting)  # type: ignore[arg-type]
        started.append((server, emulator))
        return HttpEmulator(server, counting)

    yield start
    for server, emulator in started:
        server.stop()
        emulator.close()


@pytest.fixture
def http_emulator(serve_emulator: Any) -> HttpEmulator:
    """The emulator served over real HTTP on 127.0.0.1 at instant speed."""
    return serve_emulator()


API_KEY = "sk-test-0123456789abcdef-not-a-real-key"


def http_project_for(root: Path, emulator: HttpEmulator, poll_interval: float = 0.01
                     ) -> Project:
    # The emulator's list shows a batch as soon as it is created (unless a test makes it
    # lag): a create whose outcome is unknown is looked for 1 s, not the default minute.
    project = Project(root, {"name": "openai", "base_url": emulator.url,
                             "poll_interval": poll_interval, "max_retries": 2,
                             "list_lag": 1.0})
    project.emulator = emulator
    return project


def sharded_project(root: Path, emulator: HttpEmulator, points: int = 30, shard: int = 10,
                    write_batch: int | None = None, poll_interval: float = 0.01) -> Project:
    """A seeded project over HTTP whose job packs `shard` requests per batch."""
    project = http_project_for(root, emulator, poll_interval)
    if write_batch:
        project.write_config(qdrant={"path": ".qdrant", "write_batch": write_batch})
    project.seed(points)
    project.edit("jobs/tags.yaml", "max_requests: 100", f"max_requests: {shard}")
    return project


def cancel_midway(project: Project, clock: FakeClock, job: str = "jobs/tags.yaml",
                  ran: int = 5) -> None:
    """Submit, move the emulator's clock until `ran` requests have run, cancel, and collect
    what the batch finished. The emulator runs a request only when its clock says it is
    due, so exactly `ran` run, however slow the machine (the project's emulator must have
    been started with `clock` and a non-zero seconds_per_request)."""
    project.run("apply", job, "--no-wait")
    config = project.emulator.emulator.config
    # half a request more, so float rounding cannot make it ran - 1
    clock.advance(config.validating_seconds + (ran + 0.5) * config.seconds_per_request)
    project.run("cancel", job)
    project.run("collect", job, "--wait")


def wait_until(condition: Callable[[], Any], what: str, timeout: float = 60.0) -> None:
    """Poll `condition` until it holds; fail saying `what` never happened. Tests wait for
    what they need to see, never for a number of seconds that is usually enough."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"after {timeout:.0f} s, still not {what}"
        time.sleep(0.02)


# Slow enough that a kill lands in the middle of things, fast enough for CI.
SLOW = EmulatorConfig(validating_seconds=0.2, seconds_per_request=0.01, finalizing_seconds=0.1)


@pytest.fixture
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's environment: a key, and no base URL but the project's."""
    monkeypatch.setenv("OPENAI_API_KEY", API_KEY)
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)


@pytest.fixture
def http_project(tmp_path: Path, api_key: None, http_emulator: Any) -> Project:
    """A project whose provider is the real SDK over HTTP to the emulator."""
    return http_project_for(tmp_path / "project", http_emulator)


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("NO_COLOR", "1")
