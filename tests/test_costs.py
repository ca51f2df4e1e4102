"""Money is data (issue #5): every cost in the manifest can be recomputed from the stored
output files and the price table; plan's estimate brackets what apply then costs; a
budget below the estimate stops everything before a byte is uploaded."""

from __future__ import annotations

import json
import re
import time
from decimal import Decimal
from pathlib import Path

import pytest
from conftest import cancel_midway, http_project_for
from emulator_fixtures import FakeClock

from runner.emulator import EmulatorConfig, Faults

JOB = "jobs/tags.yaml"
PRICES = json.loads((Path(__file__).parent.parent / "runner" / "data" / "prices.json")
                    .read_text())
# A system prompt over 1,024 tokens, so the emulator reports cached input tokens the way
# the real API does for a repeated prefix.
LONG_SYSTEM = "You tag YouTube videos for a search index. " + " ".join(
    f"Rule {i}: keep topics short, lowercase and specific to the video." for i in range(120))


def recompute(manifest_batch: dict, artifacts: Path, model: str) -> tuple[dict, Decimal]:
    """Tokens and batch-price cost of one batch, straight from its downloaded files."""
    totals = dict(input=0, cached_input=0, output=0, reasoning=0)
    for name in ("output_file", "error_file"):
        if not manifest_batch.get(name):
            continue
        for raw in (artifacts / "outputs" / f"{manifest_batch[name]}.jsonl").open():
            line = json.loads(raw)
            response = line.get("response") or {}
            if response.get("status_code") != 200:
                continue   # not billed
            usage = response["body"]["usage"]
            totals["input"] += usage["prompt_tokens"]
            totals["cached_input"] += usage["prompt_tokens_details"]["cached_tokens"]
            totals["output"] += usage["completion_tokens"]
            totals["reasoning"] += usage["completion_tokens_details"]["reasoning_tokens"]
    rates = PRICES["models"][model]["batch"]
    cached_rate = rates["cached_input"] if rates["cached_input"] is not None else rates["input"]
    cost = (Decimal(totals["input"] - totals["cached_input"]) * Decimal(str(rates["input"]))
            + Decimal(totals["cached_input"]) * Decimal(str(cached_rate))
            + Decimal(totals["output"]) * Decimal(str(rates["output"]))) / 1_000_000
    return totals, cost


@pytest.mark.parametrize("model,params", [
    ("gpt-4o-mini", "{temperature: 0, max_tokens: 200}"),
    # a reasoning model, with a published cached-input batch rate
    ("gpt-5-mini", "{max_completion_tokens: 2000}"),
])
def test_every_cost_in_the_manifest_is_recomputed_from_the_files_to_the_cent(
        http_project, model, params):
    http_project.seed(40)
    http_project.write("prompts/tags.system.j2", LONG_SYSTEM)
    http_project.edit(JOB, "max_requests: 100", "max_requests: 15")
    http_project.edit(JOB, "model: gpt-4o-mini", f"model: {model}")
    http_project.edit(JOB, "params: {temperature: 0, max_tokens: 200}", f"params: {params}")
    http_project.emulator.emulator.faults = Faults(seed=5, request_failure_rate=0.1,
                                                   truncation_rate=0.1)
    http_project.run("apply", JOB, expect=None)
    manifest = http_project.manifest()
    batches = manifest["jobs"]["tags"]["batches"]
    assert len(batches) >= 3
    cached = reasoning = 0
    for batch in batches:
        tokens, cost = recompute(batch, http_project.state / "artifacts", model)
        assert batch["tokens"] == tokens
        assert abs(Decimal(str(batch["cost_usd"])) - cost) < Decimal("0.005")
        assert abs(Decimal(str(batch["cost_usd"])) - cost) < Decimal("0.00000001")
        cached += tokens["cached_input"]
        reasoning += tokens["reasoning"]
    assert cached > 0, "the long shared prefix should have been billed as cached"
    assert (reasoning > 0) == model.startswith("gpt-5")
    report = http_project.run_json("costs", "--by", "batch")
    assert report["total"]["tokens"]["input"] == sum(b["tokens"]["input"] for b in batches)
    assert report["total"]["saving_usd"] > 0


def test_the_demo_jobs_actual_cost_falls_inside_the_estimated_range(project):
    project.seed(60)
    estimate = project.run_json("plan", JOB)["jobs"]["tags"]["estimate"]
    assert estimate["is_estimate"] and estimate["requests"] == 60
    project.run("apply", JOB)
    spent = project.run_json("costs")["total"]["cost_usd"]
    assert estimate["cost_usd_low"] <= spent <= estimate["cost_usd_high"]


def test_a_budget_below_the_estimate_uploads_nothing_and_says_by_how_much(http_project):
    http_project.seed(40)
    http_project.edit(JOB, "max_cost_usd: 1.00", "max_cost_usd: 0.001")
    result = http_project.run("apply", JOB, expect=1)
    message = result.stderr.splitlines()[0]
    assert message.startswith("Error: jobs/tags.yaml:") and "budget.max_cost_usd" in message
    assert "over what is left of the job's budget (budget.max_cost_usd), $0.0010" in message
    assert "requests would fit" in message
    assert http_project.emulator.counting.posts() == 0
    assert not http_project.emulator.batches_created()
    assert not (http_project.state / "artifacts" / "shards").exists() or not any(
        (http_project.state / "artifacts" / "shards").glob("*.jsonl"))


def test_max_cost_on_the_command_line_refuses_too(http_project):
    http_project.seed(40)
    result = http_project.run("apply", JOB, "--max-cost", "0.0001", expect=1)
    assert "over what is left of this run's --max-cost, $0.0001" in result.stderr
    assert http_project.emulator.counting.posts() == 0


def test_an_uncapped_output_cannot_be_budgeted(http_project):
    http_project.seed(10)
    http_project.edit(JOB, "params: {temperature: 0, max_tokens: 200}", "params: {temperature: 0}")
    result = http_project.run("apply", JOB, expect=1)
    assert "output is uncapped" in result.stderr and "max_tokens" in result.stderr
    assert http_project.emulator.counting.posts() == 0


def test_an_unknown_model_is_price_unknown_never_zero(project):
    project.seed(10)   # a fine-tuned model: the API knows it, the price table does not
    project.edit(JOB, "model: gpt-4o-mini", "model: ft:gpt-4o-mini-2024-07-18:acme::9abc")
    project.edit(JOB, "  max_cost_usd: 1.00", "  max_cost_usd: null")
    plan = project.run("plan", JOB)
    assert "cost unknown" in plan.stdout and "$0.0000" not in plan.stdout
    project.run("apply", JOB)
    report = project.run_json("costs")
    assert report["total"]["unpriced_batches"] == 1
    assert "no known price" in project.run("costs").stdout


def test_plan_warns_when_a_job_is_over_its_budget(project):
    project.seed(40)
    project.edit(JOB, "max_cost_usd: 1.00", "max_cost_usd: 0.001")
    plan = project.run("plan", JOB).stdout
    assert "against budget.max_cost_usd $0.0010 (jobs/tags.yaml:35: budget.max_cost_usd): " \
           "apply will refuse this job" in plan
    assert project.run_json("plan", JOB)["jobs"]["tags"]["estimate"]["over_budget"] is True


def test_costs_count_what_ran_apart_from_what_was_sent(serve_emulator, tmp_path, api_key):
    clock = FakeClock(time.time())
    emulator = serve_emulator(EmulatorConfig(validating_seconds=0.1, seconds_per_request=0.2),
                              clock=clock)
    project = http_project_for(tmp_path / "p", emulator)
    project.seed(20)
    cancel_midway(project, clock)                # 5 requests run, then the batch stops
    total = project.run_json("costs")["total"]
    assert total["requests"] == 20 and 0 < total["billed_requests"] < 20


def test_a_damaged_manifest_is_rebuilt_from_the_ledger_with_a_warning(project):
    project.seed(5)
    project.run("apply", JOB)
    before = project.run_json("costs")
    (project.state / "manifest.json").write_bytes(b"\xff{ not json")
    result = project.run("costs")
    assert result.stderr.startswith(f"warning: {project.state / 'manifest.json'}: not a manifest")
    assert project.run_json("costs") == before
    assert project.manifest()["format"] == 1
    (project.state / "manifest.json").write_text("[]")
    project.run("apply", JOB)        # a run that changes nothing still mends the view
    assert project.run_json("costs") == before


def test_a_manifest_of_another_format_is_not_misread(project, tmp_path):
    project.seed(2)
    project.run("apply", JOB)
    (project.state / "manifest.json").write_text('{"format": 99, "jobs": {}}')
    (project.state / "state.db").rename(tmp_path / "state.db")   # only the manifest is left
    error = project.run("costs", expect=1).stderr
    assert "manifest format 99, expected 1" in error


def test_a_max_cost_with_nothing_left_says_so_and_tiny_amounts_keep_their_digits(project):
    project.seed(10)
    result = project.run("apply", JOB, "--max-cost", "0", expect=1)
    assert re.search(r"10 requests are estimated at up to \$0\.\d{4}, and nothing is left of "
                     r"this run's --max-cost\n", result.stderr)
    assert "$0.0000" not in result.stderr
    result = project.run("apply", JOB, "--max-cost", "0.00001", expect=1)
    assert "over what is left of this run's --max-cost, $0.000010; about 0 requests would " \
           "fit" in result.stderr


def test_money_shows_two_significant_digits_below_a_hundredth_of_a_cent():
    from runner.views import money
    assert [money(Decimal(v)) for v in ("0", "0.0000018", "0.00001", "0.0123", "12.5")] == [
        "$0.0000", "$0.0000018", "$0.000010", "$0.0123", "$12.50"]


def test_synchronous_calls_keep_their_prompt_cache_writes_and_older_ledgers_gain_the_column(
        tmp_path):
    import sqlite3

    from runner import migrations, synclog
    from runner.ledger import Ledger
    from runner.results import Usage

    old = sqlite3.connect(tmp_path / "state.db", isolation_level=None)   # as 0006 left it
    old.execute("CREATE TABLE migrations (name TEXT PRIMARY KEY, "
                "applied_at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)")
    for migration in migrations.MIGRATIONS[:6]:
        migration.apply(old)
        old.execute("INSERT INTO migrations (name) VALUES (?)", (migration.name,))
    old.execute("INSERT INTO sync_calls (job, key, at, endpoint, model, ok, billed, "
                "input_tokens, cached_tokens, output_tokens, reasoning_tokens, cost_usd) "
                "VALUES ('tags', 'k0', ?, '/v1/messages', 'claude-haiku-4-5', 1, 1, "
                "100, 0, 10, 0, '0.0002')", (time.time(),))
    old.close()
    ledger = Ledger(tmp_path, "emulator")
    try:
        written = Usage(input_tokens=1500, output_tokens=20, cache_write_tokens=1200,
                        cache_write_1h_tokens=200)
        with ledger.transaction():
            synclog.record(ledger, [synclog.SyncCall("tags", "k1", "/v1/messages",
                                                     "claude-haiku-4-5", True, True, written,
                                                     Decimal("0.003"))])
        (day,) = synclog.spend(ledger)["tags"]
    finally:
        ledger.close()
    assert day["tokens"] == {"input": 1600, "cached_input": 0, "output": 30, "reasoning": 0,
                             "cache_write": 1200}
    assert day["calls"] == 2 and day["cost_usd"] == 0.0032
