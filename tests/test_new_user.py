"""A new user, following the README alone: init → edit → validate → plan → apply → show →
costs on their own collection, with readable output at every step; output piped to a
file carries no terminal control codes, while a terminal gets live progress."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

from click.testing import CliRunner
from qdrant_client import QdrantClient, models

from runner.cli import cli

PRODUCTS = [
    {"name": "Trail running shoe", "text": "Light shoe with a grippy sole for muddy trails."},
    {"name": "Espresso grinder", "text": "Conical burr grinder with 40 grind settings."},
    {"name": "Rain jacket", "text": "Waterproof jacket that packs into its own pocket."},
]
SUMMARIES = """# yaml-language-server: $schema=../schemas/job.schema.json
name: summaries
source:
  collection: products
  fields: [name, text]
prompt:
  system: You write one-line product summaries.
  user: "{{ name }}: {{ text }}"
model: gpt-4o-mini
params: {max_tokens: 100}
output:
  key: summary
  fields:
    summary: {type: string}
    audience: {type: string, enum: [runners, coffee lovers, hikers, everyone]}
"""


def batchrun(root: Path, *args: str, code: int = 0) -> str:
    result = CliRunner().invoke(cli, ["-C", str(root), *args])
    assert result.exit_code == code, f"batchrun {' '.join(args)}:\n{result.output}"
    return result.stdout


def products_project(tmp_path: Path) -> Path:
    """What the README has a new user do: init, load their own collection, write a job."""
    root = tmp_path / "my-project"
    created = batchrun(tmp_path, "init", "my-project")
    assert "created batchrun.yaml" in created and "created jobs/tags.yaml" in created
    assert "created schemas/job.schema.json" in created
    client = QdrantClient(path=str(root / ".qdrant"))     # the user's own collection
    client.create_collection("products", vectors_config={})
    client.upsert("products", [models.PointStruct(id=i + 1, vector={}, payload=p)
                               for i, p in enumerate(PRODUCTS)])
    client.close()
    (root / "jobs" / "tags.yaml").unlink()       # the examples read the demo's videos
    (root / "jobs" / "embed.yaml").unlink()
    (root / "jobs" / "summaries.yaml").write_text(SUMMARIES)
    config = (root / "batchrun.yaml").read_text()
    (root / "batchrun.yaml").write_text(
        config.replace("  name: emulator", "  name: emulator\n  emulator_speed: instant"))
    return root


def test_init_edit_validate_plan_apply_show_costs(tmp_path):
    root = products_project(tmp_path)
    assert "already exist" in CliRunner().invoke(cli, ["-C", str(tmp_path), "init",
                                                       "my-project"]).output
    assert batchrun(root, "validate") == "ok: jobs/summaries.yaml (job summaries)\n"
    plan = batchrun(root, "plan").splitlines()
    assert plan[0] == "+ summaries (jobs/summaries.yaml): 3 matched — 3 to submit"
    assert plan[-1].startswith("Plan: 1 job, 3 requests, ~$")
    applied = batchrun(root, "apply").splitlines()
    assert applied[0] == "summaries: 3 matched, 3 requests sent in 1 batch, 3 written"
    assert applied[-1].startswith("Done: 1 batch submitted, 1 collected,")
    shown = batchrun(root, "show", "summaries", "--limit", "1")
    assert shown.startswith("point 1\n  name: Trail running shoe\n")
    assert "  → summary: {" in shown
    assert batchrun(root, "show", "jobs/summaries.yaml", "--limit", "1") == shown   # or its file
    costs = batchrun(root, "costs").splitlines()
    assert costs[0].split() == ["JOB", "BATCHES", "SENT", "BILLED", "INPUT", "CACHED", "OUTPUT",
                                "REASONING", "COST", "AT", "STANDARD", "SAVED"]
    assert costs[1].split()[:4] == ["summaries", "1", "3", "3"]
    assert batchrun(root, "plan").splitlines()[0] == \
        "= summaries (jobs/summaries.yaml): 3 matched, all up to date"


def apply_command(tmp_path: Path) -> tuple[list[str], dict[str, str]]:
    """`batchrun apply` on a new user's project, with the environment of a colour terminal."""
    env = {**os.environ, "TERM": "xterm-256color"}
    env.pop("NO_COLOR", None)
    return [sys.executable, "-m", "runner.cli", "-C", str(products_project(tmp_path)),
            "apply"], env


def test_piped_output_has_no_control_codes(tmp_path):
    command, env = apply_command(tmp_path)
    piped = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert piped.returncode == 0, piped.stderr
    assert "\x1b" not in piped.stdout + piped.stderr
    assert "submitted batch" in piped.stderr and "Done:" in piped.stdout


def test_a_terminal_gets_live_progress(tmp_path):
    command, env = apply_command(tmp_path)
    main, secondary = pty.openpty()
    process = subprocess.Popen(command, stdin=secondary, stdout=secondary, stderr=secondary,
                               env=env, close_fds=True)
    os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(main, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    assert process.wait(timeout=300) == 0, output.decode(errors="replace")
    assert b"\x1b[" in output, "a terminal should get live progress"
    assert b"Done:" in output
