"""Projects whose jobs are answered by Anthropic or Azure OpenAI — the served emulator,
through the real `anthropic` and `openai` SDKs over HTTP — and what tests read back.
Import what a test module uses; this module holds no tests."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from conftest import HttpEmulator, Project

ANTHROPIC_KEY = "sk-ant-test-0123456789-not-a-real-key"
AZURE_KEY = "azure-test-key-0123456789"
CLAUDE = "claude-haiku-4-5"
JOB = "jobs/tags.yaml"


def to_anthropic(project: Project, model: str = CLAUDE) -> None:
    """The starter job as an Anthropic job: a Claude model, and no temperature (the
    anthropic SDK declares none); max_tokens stays."""
    project.edit(JOB, "model: gpt-4o-mini", f"model: {model}")
    project.edit(JOB, "params: {temperature: 0, max_tokens: 200}", "params: {max_tokens: 200}")


def anthropic_project(root: Path, emulator: HttpEmulator, **provider: Any) -> Project:
    """A project on Anthropic's Message Batches, served by `emulator` (the SDK's base URL
    is the server's root: it adds /v1 itself)."""
    project = Project(root, {"name": "anthropic", "base_url": emulator.url.removesuffix("/v1"),
                             "poll_interval": 0.01, "max_retries": 2, **provider})
    project.emulator = emulator
    to_anthropic(project)
    return project


def azure_project(root: Path, emulator: HttpEmulator, **provider: Any) -> Project:
    """A project on Azure OpenAI (`openai.AzureOpenAI`), its deployment named like the
    model it runs."""
    origin = emulator.url.removesuffix(emulator.emulator.config.base_path)
    project = Project(root, {"name": "azure", "base_url": origin, "api_version": "2024-10-21",
                             "poll_interval": 0.01, "max_retries": 2, **provider})
    project.emulator = emulator
    return project


def anthropic_events(emulator: HttpEmulator, kind: str) -> list[dict]:
    return [e for e in emulator.emulator.anthropic.log.events if e["event"] == kind]


def anthropic_sent_keys(emulator: HttpEmulator) -> list[str]:
    """Every custom_id put into a Message Batch, once per batch it was in."""
    return [k for e in anthropic_events(emulator, "batch_created") for k in e["custom_ids"]]


def anthropic_log(emulator: HttpEmulator) -> Any:
    """The emulator as tests/test_exactly_once.py's checks read it, with the Anthropic
    dialect's request log in place of the OpenAI one."""
    return SimpleNamespace(emulator=SimpleNamespace(log=emulator.emulator.anthropic.log))
