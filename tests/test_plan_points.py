"""plan names the points behind its counts — which ids are new or changed, and which fields
changed on them — from a digest per field kept in each stamp; a stamp from before those
digests still works, it just cannot name the field."""

from __future__ import annotations

from runner.reconcile import field_digests
from runner.writeback import stamp_key

JOB = "jobs/tags.yaml"


def edit_points(project, changes: dict[int, dict]) -> None:
    with project.qdrant() as client:
        for point_id, payload in changes.items():
            client.set_payload("videos", payload, [point_id])


def test_plan_names_the_changed_points_and_the_fields_changed_on_them(project):
    project.seed(20)
    project.run("apply", JOB)
    edit_points(project, {3: {"title": "new 3"}, 4: {"title": "new 4", "tags": ["x"]}})
    project.seed(2, start=20)
    out = project.run("plan", JOB).stdout.splitlines()
    assert out[0] == "~ tags (jobs/tags.yaml): 22 matched — 18 up to date, 4 to submit"
    assert out[1] == "    why: 2 new points: 21, 22; 2 points changed: 3, 4"
    assert out[2:4] == ["    title changed on 2 points: 3, 4", "    tags changed on 1 point: 4"]
    points = project.run_json("plan", JOB)["jobs"]["tags"]["points"]
    assert points == {"new": {"count": 2, "ids": [21, 22]},
                      "changed": {"count": 2, "ids": [3, 4]},
                      "fields": {"tags": {"count": 1, "ids": [4]},
                                 "title": {"count": 2, "ids": [3, 4]}},
                      "fields_unknown": 0, "complete": False}


def test_one_point_is_one_point_and_many_are_cut_after_five(project):
    project.seed(20)
    project.run("apply", JOB)
    edit_points(project, {7: {"title": "seven"}})
    assert project.run("plan", JOB).stdout.splitlines()[1:3] == [
        "    why: 1 point changed: 7", "    title changed on 1 point: 7"]
    edit_points(project, {i: {"title": f"t{i}"} for i in range(1, 10)})
    why = project.run("plan", JOB).stdout.splitlines()[1]
    assert why == "    why: 9 points changed: 1, 2, 3, 4, 5 … 4 more"


def test_plan_points_lists_every_id(project):
    project.seed(20)
    project.run("apply", JOB)
    edit_points(project, {i: {"title": f"t{i}"} for i in range(1, 10)})
    out = project.run("plan", JOB, "--points").stdout.splitlines()
    assert "    changed points (9): 1, 2, 3, 4, 5, 6, 7, 8, 9" in out
    assert "    title changed on 9 points: 1, 2, 3, 4, 5, 6, 7, 8, 9" in out
    points = project.run_json("plan", JOB, "--points")["jobs"]["tags"]["points"]
    assert points["changed"] == {"count": 9, "ids": list(range(1, 10))} and points["complete"]


def test_a_stamp_from_before_field_digests_still_works_without_naming_the_field(project):
    project.seed(10)
    project.run("apply", JOB)
    payloads = project.payloads()
    with project.qdrant() as client:      # stamps as an older batchrun wrote them
        for point_id, payload in payloads.items():
            old = {k: v for k, v in payload[stamp_key("tags")].items() if k != "fields"}
            client.set_payload("videos", {stamp_key("tags"): old}, [point_id])
    assert "all up to date" in project.run("plan", JOB).stdout   # an old stamp still counts
    edit_points(project, {5: {"title": "five"}})
    plan = project.run_json("plan", JOB)["jobs"]["tags"]
    assert plan["to_submit"] == 1 and plan["points"]["fields_unknown"] == 1
    assert plan["reasons"][0] == "1 point changed: 5"
    assert "stamps were written before batchrun recorded a digest per field" in plan["reasons"][1]
    project.run("apply", JOB)
    assert "fields" in project.payloads()[5][stamp_key("tags")]    # renewed with the answer


def test_stamps_carry_a_digest_of_each_field_the_templates_read(project):
    project.seed(3)
    project.run("apply", JOB)
    payload = project.payloads()[1]
    fields = payload[stamp_key("tags")]["fields"]
    assert set(fields) == {"title", "channel_title", "category", "tags", "description"}
    read = frozenset(fields)
    assert fields == field_digests({k: payload[k] for k in read}, read)


def test_field_digests_cover_only_what_the_templates_read_unless_they_read_payload():
    payload = {"title": "a", "views": 3, "tags": ["x"]}
    assert set(field_digests(payload, frozenset({"title", "tags"}))) == {"title", "tags"}
    assert set(field_digests(payload, None)) == {"title", "views", "tags"}
    assert field_digests({"n": float("nan")}, None)["n"]   # not JSON, still a digest
    assert field_digests({"t": [1, 2]}, None) != field_digests({"t": [2, 1]}, None)


def test_the_low_end_of_the_estimate_says_it_learns_from_past_answers(project):
    project.seed(10)
    first = project.run_json("plan", JOB)["jobs"]["tags"]["estimate"]
    assert first["output_tokens_mean"] is None
    assert "the low end assumes" not in project.run("plan", JOB).stdout
    project.run("apply", JOB)
    edit_points(project, {2: {"title": "two"}})
    mean = project.run_json("plan", JOB)["jobs"]["tags"]["estimate"]["output_tokens_mean"]
    assert mean > 0
    assert f"    (the low end assumes {mean:,.0f} output tokens a request: the average of " \
           "this job's answers so far)" in project.run("plan", JOB).stdout.splitlines()
