"""Shared fixtures: a throw-away batchrun project with an embedded Qdrant, run through the
real CLI; the emulator in-process or over real HTTP on 127.0.0.1."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pytest
from click.testing import CliRunner, Result
from qdrant_client import QdrantClient, models

from runner.cli import cli
from runner.demo import sample_videos

STARTER = Path(__file__).resolve().parent.parent / "runner" / "data" / "project"


class Project:
    """A project folder plus helpers to edit it, seed it, and run batchrun in it."""

    def __init__(self, root: Path, provider: dict[str, Any]):
        self.root = root
        self.provider = provider
        shutil.copytree(STARTER / "jobs", root / "jobs")
        shutil.copytree(STARTER / "prompts", root / "prompts")
        self.write_config()

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

    def seed(self, count: int = 40, collection: str = "videos") -> None:
        """The first `count` sample videos as points 1…count (all regions)."""
        videos = [v for _, v in zip(range(count), sample_videos())]
        with self.qdrant() as client:
            if not client.collection_exists(collection):
                client.create_collection(collection, vectors_config={})
            client.upsert(collection, points=[
                models.PointStruct(id=i + 1, vector={}, payload=v) for i, v in enumerate(videos)])

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


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A project on the in-process emulator (instant), its own embedded Qdrant."""
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    return Project(tmp_path / "project", {"name": "emulator", "emulator_speed": "instant",
                                          "poll_interval": 0.01})


@pytest.fixture
def http_emulator(tmp_path: Path) -> Iterator[Any]:
    """The emulator served over real HTTP on 127.0.0.1 (a thread, port 0)."""
    from emulator_fixtures import running_emulator  # provided with the emulator's tests

    with running_emulator(tmp_path / "emulator-state") as server:
        yield server


@pytest.fixture
def http_project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, http_emulator: Any) -> Project:
    """A project whose provider is the real SDK over HTTP to the emulator."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.delenv("OPENAI_BASE_URL", raising=False)
    project = Project(tmp_path / "project", {"name": "openai", "base_url": http_emulator.url,
                                             "poll_interval": 0.01})
    project.emulator = http_emulator
    return project


def pytest_configure(config: pytest.Config) -> None:
    os.environ.setdefault("NO_COLOR", "1")
