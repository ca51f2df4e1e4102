"""The CI recipe in examples/github-actions.yml works as written: its commands, run in
order in fresh checkouts with .batchrun/ carried by a cache, plan on a pull request,
submit on one push to main and collect on the next — never paying twice — and every run
leaves the report page where its upload step looks for it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from conftest import API_KEY, Project
from emulator_fixtures import FakeClock

from runner.emulator import EmulatorConfig

RECIPE = Path(__file__).resolve().parent.parent / "examples" / "github-actions.yml"
IN_FLIGHT = EmulatorConfig(validating_seconds=3600)   # still in flight when run 1 ends


def steps(event: str) -> list[str]:
    """The `run:` commands a workflow run for `event` executes, in order."""
    workflow = yaml.safe_load(RECIPE.read_text())
    commands = []
    for step in workflow["jobs"]["batchrun"]["steps"]:
        if "run" not in step or step["name"] == "Install batchrun":
            continue
        condition = step.get("if", "")
        if condition == "github.event_name == 'pull_request'" and event != "pull_request":
            continue
        if condition == "github.event_name != 'pull_request'" and event == "pull_request":
            continue
        commands.append(step["run"])
    return commands


def uploaded() -> str:
    """The file the recipe's upload step sends as an artifact."""
    workflow = yaml.safe_load(RECIPE.read_text())
    [upload] = [step for step in workflow["jobs"]["batchrun"]["steps"]
                if step.get("uses", "").startswith("actions/upload-artifact@")]
    assert "if" not in upload, "every run uploads its report"
    return upload["with"]["path"]


def run_workflow(event: str, checkout: Path, env: dict) -> list[subprocess.CompletedProcess]:
    results = []
    for command in steps(event):
        result = subprocess.run(["bash", "-eo", "pipefail", "-c", command], cwd=checkout,
                                env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, f"step failed: {command}\n{result.stdout}\n{result.stderr}"
        results.append(result)
    report = checkout / uploaded()
    assert report.is_file(), f"{event}: no {uploaded()} for the upload step"
    assert any(f"Report: {report}" in r.stdout for r in results)
    return results


def plan_output(results: list[subprocess.CompletedProcess]) -> str:
    [plan] = [r for r in results if "batchrun plan" in r.args[-1]]
    return plan.stdout


@pytest.mark.slow
def test_the_recipe_plans_on_a_pull_request_submits_on_main_and_collects_next_time(
        serve_emulator, tmp_path):
    clock = FakeClock(time.time())
    emulator = serve_emulator(IN_FLIGHT, clock=clock)
    seeder = Project(tmp_path / "team", {"name": "emulator"})
    seeder.seed(30)                               # the team's Qdrant, outside any checkout
    repo = tmp_path / "repo"                      # what actions/checkout gives each run
    Project(repo, {"name": "openai"}).write_config(
        qdrant={"path": str(seeder.root / ".qdrant")})
    env = {**os.environ, "OPENAI_API_KEY": API_KEY, "OPENAI_BASE_URL": emulator.url,
           "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    cache = tmp_path / "actions-cache"

    def checkout(name: str) -> Path:
        path = tmp_path / name
        shutil.copytree(repo, path)
        if cache.exists():                        # actions/cache restore
            shutil.copytree(cache, path / ".batchrun")
        return path

    def save(path: Path) -> None:                 # actions/cache save
        shutil.rmtree(cache, ignore_errors=True)
        shutil.copytree(path / ".batchrun", cache)

    pull_request = run_workflow("pull_request", checkout("pr"), env)
    assert "30 to submit" in plan_output(pull_request)
    assert not emulator.batches_created(), "a pull request must spend nothing"

    first = checkout("push-1")
    run_workflow("push", first, env)
    save(first)
    assert len(emulator.batches_created()) == 1

    clock.advance(3700)                           # the batch finishes meanwhile
    second = checkout("push-2")
    run_workflow("push", second, env)
    save(second)
    assert len(emulator.batches_created()) == 1, "the second run must collect, not resubmit"
    written = [p for p in seeder.payloads().values() if "llm_tags" in p]
    assert len(written) == 30
    third = run_workflow("pull_request", checkout("pr-2"), env)
    assert "all up to date" in plan_output(third)
