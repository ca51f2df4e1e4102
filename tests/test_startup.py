"""The CLI starts at once: a command loads the openai SDK only when it talks to an API, and
qdrant-client only when it reads Qdrant (bench/startup.py measures the seconds)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest


def modules_imported(args: list[str], cwd: Path) -> set[str]:
    """Every module a `batchrun` command imports (from python -X importtime)."""
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "runner.cli", *args],
                          cwd=cwd, capture_output=True, text=True, timeout=120)
    return {line.rsplit("|", 1)[1].strip() for line in done.stderr.splitlines()
            if line.startswith("import time:") and "|" in line}


def modules_loaded(args: list[str], cwd: Path) -> set[str]:
    """Top-level packages a `batchrun` command imports."""
    return {name.split(".")[0] for name in modules_imported(args, cwd)}


@pytest.fixture
def spec_project(tmp_path: Path) -> Path:
    subprocess.run([sys.executable, "-m", "runner.cli", "init", str(tmp_path / "p")],
                   check=True, capture_output=True)
    return tmp_path / "p"


@pytest.mark.parametrize("args", [["--help"], ["--version"], ["validate"], ["plan", "--help"],
                                  ["init", "new"], ["try", "--help"], ["render", "--help"],
                                  ["report", "--help"]], ids=" ".join)
def test_commands_that_need_neither_load_neither(spec_project: Path, args: list[str]):
    loaded = modules_loaded(args, spec_project)
    assert "runner" in loaded
    assert not loaded & {"openai", "anthropic", "qdrant_client", "httpx", "httpx2"}


@pytest.mark.parametrize("command", ["plan", "report"])
def test_plan_and_report_read_qdrant_but_never_load_the_sdk(spec_project: Path, command: str):
    loaded = modules_loaded([command], spec_project)   # fails: no collection; after Qdrant
    assert "qdrant_client" in loaded and "openai" not in loaded


def test_render_reads_qdrant_but_never_loads_the_sdk(spec_project: Path):
    loaded = modules_loaded(["render", "tags"], spec_project)   # fails: no collection
    assert "qdrant_client" in loaded and "openai" not in loaded


def test_an_anthropic_project_plans_without_either_sdk(spec_project: Path):
    (spec_project / "batchrun.yaml").write_text(
        "provider: {name: emulator, dialect: anthropic}\n")
    (spec_project / "jobs" / "embed.yaml").unlink()   # Anthropic has no embeddings endpoint
    job = spec_project / "jobs" / "tags.yaml"
    job.write_text(job.read_text().replace("model: gpt-4o-mini", "model: claude-haiku-4-5")
                   .replace("temperature: 0, ", ""))
    assert not modules_loaded(["validate"], spec_project) & {"openai", "anthropic"}
    loaded = modules_loaded(["plan"], spec_project)
    assert "qdrant_client" in loaded and not loaded & {"openai", "anthropic"}


def test_a_spec_only_validate_loads_only_what_checking_specs_needs(spec_project: Path):
    imported = modules_imported(["validate"], spec_project)
    # jsonschema checks answers and output schemas beyond strict mode's subset; the
    # emulator serves tests and the demo; neither is needed to check the specs init wrote
    assert not [name for name in imported if name.split(".")[0] == "jsonschema"
                or name.startswith("runner.emulator")]
