"""A pass reads only the parts of a stamp it decides by (writeback.STAMP_READ): the rest of
a stamp (the field digests, the model, when) is a third of a scroll page's memory at a
million points. What it does not read it must not lose: a renewed stamp keeps it, and a
changed point still names its changed fields. A stamp's key is quoted wherever it is a
path, since a job name may hold a dot."""

from __future__ import annotations

from runner.jobs import load_jobs
from runner.pointchanges import ChangedPoints
from runner.project import load_project
from runner.select import Selection
from runner.writeback import STAMP_READ, stamp_key, stamp_path

JOB = "jobs/tags.yaml"


def renew_digest_scheme(project, job: str, point_ids: list[int]) -> None:
    """Stamps whose inputs digest is of an older scheme: the next pass renders those
    points, finds the key of their stamp, and renews the digest (a restamp)."""
    with project.qdrant() as client:
        client.set_payload("videos", {"inputs": "m1:older-scheme"}, point_ids,
                           key=stamp_path(job))


def test_a_pass_reads_only_the_parts_of_a_stamp_it_decides_by(project):
    project.seed(6)
    project.run("apply", JOB)
    assert "fields" in project.payloads()[1][stamp_key("tags")]
    context = load_project(project.root)
    [job] = load_jobs([JOB], context, project.root)
    with project.qdrant() as client:
        points = list(Selection(client, job, page=100, embedded=True).points())
        assert [set(point.stamp or ()) for point in points] == [set(STAMP_READ)] * 6
        assert set(Selection(client, job, page=100).points_with_ids([2])[0].stamp or ()) \
            == set(STAMP_READ)


def test_a_renewed_stamp_keeps_what_the_pass_did_not_read(project):
    project.seed(6)
    project.run("apply", JOB)
    before = project.payloads()[3][stamp_key("tags")]
    renew_digest_scheme(project, "tags", [3])
    plan = project.run_json("plan", JOB)["jobs"]["tags"]
    assert (plan["up_to_date"], plan["to_submit"]) == (6, 0)
    project.run("apply", JOB)
    after = project.payloads()[3][stamp_key("tags")]
    assert after == before      # the digest renewed to what it was; model, batch, when kept
    assert "all up to date" in project.run("plan", JOB).stdout


def test_a_changed_point_names_its_fields_though_the_pass_never_read_them(project,
                                                                         monkeypatch):
    monkeypatch.setattr(ChangedPoints, "BATCH", 7)   # 20 changed points: three reads
    project.seed(30)
    project.run("apply", JOB)
    with project.qdrant() as client:
        for point_id in range(1, 21):
            client.set_payload("videos", {"title": f"t{point_id}"}, [point_id])
        client.set_payload("videos", {"tags": ["x"]}, [20])
    points = project.run_json("plan", JOB, "--points")["jobs"]["tags"]["points"]
    assert points["changed"] == {"count": 20, "ids": list(range(1, 21))}
    assert points["fields"] == {"title": {"count": 20, "ids": list(range(1, 21))},
                                "tags": {"count": 1, "ids": [20]}}
    assert points["fields_unknown"] == 0


def test_a_job_whose_name_holds_a_dot_finds_its_stamps(project):
    project.edit(JOB, "name: tags\n", "name: tags.v2\n")
    project.seed(6)
    project.run("apply", JOB)
    payload = project.payloads()[1]
    assert "_batchrun_tags.v2" in payload and "_batchrun_tags" not in payload
    assert "all up to date" in project.run("plan", JOB).stdout
    renew_digest_scheme(project, "tags.v2", [2])
    before = project.payloads()[2]["_batchrun_tags.v2"]
    project.run("apply", JOB)
    assert project.payloads()[2]["_batchrun_tags.v2"]["model"] == before["model"]
    assert "all up to date" in project.run("plan", JOB).stdout
