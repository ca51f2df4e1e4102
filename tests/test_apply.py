"""apply is make-like: it sends what changed and nothing else (issue #3, "Done when").

Every test runs the real CLI against an embedded Qdrant and the emulator served over real
HTTP on 127.0.0.1, through the official openai SDK.
"""

from __future__ import annotations

from qdrant_client import models

from runner.writeback import stamp_key

JOB = "jobs/tags.yaml"
SELECTED = 40  # the first 40 sample videos; the demo filter keeps US, GB and CA


def selected_ids(project) -> list[int]:
    return sorted(i for i, p in project.payloads().items() if p["region"] in ("US", "GB", "CA"))


def test_every_selected_point_gets_validated_fields_and_a_stamp(http_project):
    http_project.seed(SELECTED)
    http_project.run("apply", JOB)
    payloads = http_project.payloads()
    selected = selected_ids(http_project)
    assert selected, "the sample should hold US/GB/CA videos"
    for point_id, payload in payloads.items():
        if point_id not in selected:
            assert "llm_tags" not in payload, "points outside the filter must not be written"
            continue
        tags = payload["llm_tags"]
        assert set(tags) == {"topics", "category", "language"}
        assert tags["category"] in {"Music", "Gaming", "News", "Education", "Entertainment",
                                    "Sports", "Comedy", "Science", "Other"}
        assert len(tags["topics"]) <= 8
        stamp = payload[stamp_key("tags")]
        assert len(stamp["key"]) == 64 and stamp["batch"].startswith("batch_")
        assert stamp["model"].startswith("gpt-4o-mini")
    assert len(http_project.emulator.sent_keys()) == len(selected)


def test_a_second_apply_creates_no_batch_and_sends_no_request(http_project):
    http_project.seed(SELECTED)
    http_project.run("apply", JOB)
    posts_before = http_project.emulator.counting.posts()
    batches_before = len(http_project.emulator.batches_created())
    result = http_project.run("apply", JOB)
    assert http_project.emulator.counting.posts() == posts_before
    assert len(http_project.emulator.batches_created()) == batches_before
    assert "all up to date" in result.stdout


def test_changed_points_are_the_only_ones_resent(http_project):
    http_project.seed(SELECTED)
    http_project.run("apply", JOB)
    changed = selected_ids(http_project)[:3]
    with http_project.qdrant() as client:
        for point_id in changed:
            client.set_payload("videos", {"title": f"A new title for {point_id}"}, [point_id])
    plan = http_project.run_json("plan", JOB)
    assert plan["jobs"]["tags"]["to_submit"] == 3
    assert f"3 points changed: {', '.join(map(str, sorted(changed)))}" in \
        plan["jobs"]["tags"]["reasons"]
    assert plan["jobs"]["tags"]["points"]["fields"] == {
        "title": {"count": 3, "ids": sorted(changed)}}
    sent_before = len(http_project.emulator.sent_keys())
    http_project.run("apply", JOB)
    assert len(http_project.emulator.sent_keys()) - sent_before == 3


def test_added_points_are_the_only_ones_sent(http_project):
    http_project.seed(SELECTED)
    http_project.run("apply", JOB)
    sent_before = len(http_project.emulator.sent_keys())
    http_project.seed(5, start=SELECTED)
    added = 5
    assert http_project.run_json("plan", JOB)["jobs"]["tags"]["to_submit"] == added
    http_project.run("apply", JOB)
    assert len(http_project.emulator.sent_keys()) - sent_before == added


def test_a_template_change_resends_everything_and_its_revert_sends_nothing(http_project):
    http_project.seed(SELECTED)
    http_project.run("apply", JOB)
    selected = len(selected_ids(http_project))
    sent = len(http_project.emulator.sent_keys())
    http_project.edit("prompts/tags.user.j2", "Title: {{ title }}", "Video title: {{ title }}")
    plan = http_project.run_json("plan", JOB)["jobs"]["tags"]
    assert plan["to_submit"] == selected and plan["status"] == "changed"
    http_project.run("apply", JOB)
    assert len(http_project.emulator.sent_keys()) - sent == selected
    sent = len(http_project.emulator.sent_keys())
    http_project.edit("prompts/tags.user.j2", "Video title: {{ title }}", "Title: {{ title }}")
    plan = http_project.run_json("plan", JOB)["jobs"]["tags"]
    assert plan["to_submit"] == 0 and plan["cached"] == selected
    http_project.run("apply", JOB)
    assert len(http_project.emulator.sent_keys()) == sent
    assert http_project.run_json("plan", JOB)["jobs"]["tags"]["up_to_date"] == selected


def test_description_budget_and_batch_size_changes_send_nothing(http_project):
    http_project.seed(SELECTED)
    http_project.run("apply", JOB)
    sent = len(http_project.emulator.sent_keys())
    http_project.edit(JOB, "description: Topics", "description: Now described differently. Topics")
    http_project.edit(JOB, "max_cost_usd: 1.00", "max_cost_usd: 2.00")
    http_project.edit(JOB, "max_requests: 100", "max_requests: 7")
    assert http_project.run("plan", JOB, "--detailed-exitcode").exit_code == 0
    http_project.run("apply", JOB)
    assert len(http_project.emulator.sent_keys()) == sent


def test_the_manifest_lists_every_batch_with_tokens_and_cost_and_costs_sums_them(http_project):
    http_project.seed(SELECTED)
    http_project.edit(JOB, "max_requests: 100", "max_requests: 10")
    http_project.run("apply", JOB)
    manifest = http_project.manifest()
    batches = manifest["jobs"]["tags"]["batches"]
    created = {e["batch_id"] for e in http_project.emulator.batches_created()}
    assert {b["batch_id"] for b in batches} == created and len(created) >= 2
    for batch in batches:
        assert batch["status"] == "completed" and batch["tokens"]["input"] > 0
        assert batch["cost_usd"] > 0 and batch["cost_standard_usd"] > batch["cost_usd"]
    report = http_project.run_json("costs")
    total = report["total"]
    assert total["batches"] == len(batches)
    assert total["tokens"]["input"] == sum(b["tokens"]["input"] for b in batches)
    assert abs(total["cost_usd"] - sum(b["cost_usd"] for b in batches)) < 1e-6


def test_no_wait_submits_and_a_later_apply_collects_without_resubmitting(http_project):
    http_project.seed(SELECTED)
    first = http_project.run_json("apply", JOB, "--no-wait")
    assert first["submitted"] >= 1
    batches = len(http_project.emulator.batches_created())
    assert not any("llm_tags" in p for p in http_project.payloads().values())
    http_project.run("apply", JOB)
    assert len(http_project.emulator.batches_created()) == batches
    written = [p for p in http_project.payloads().values() if "llm_tags" in p]
    assert len(written) == len(selected_ids(http_project))


def test_identical_requests_are_sent_once(http_project):
    http_project.seed(SELECTED)
    with http_project.qdrant() as client:   # two points with identical inputs
        first = client.retrieve("videos", [1])[0].payload
        client.upsert("videos", points=[models.PointStruct(id=999, vector={}, payload=first)])
    http_project.run("apply", JOB)
    keys = http_project.emulator.sent_keys()
    assert len(keys) == len(set(keys))
    payloads = http_project.payloads()
    assert payloads[999]["llm_tags"] == payloads[1]["llm_tags"]
