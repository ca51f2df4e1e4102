"""A filter that selects nothing is a warning, not "up to date": plan and apply say which
filter keys no sampled point has (with the likely word) and which values have another
type than the field holds; `validate --qdrant` checks filter keys and source.fields
against a sample of the collection."""

from __future__ import annotations

from runner.datacheck import Condition, conditions, kind_of, values_at

JOB = "jobs/tags.yaml"


def test_a_misspelt_filter_key_is_a_warning_with_the_likely_word(project):
    project.seed(10)
    project.edit(JOB, "key: region", "key: regoin")
    out = project.run("plan", JOB, "--detailed-exitcode").stdout.splitlines()
    assert out[0].startswith("! tags (jobs/tags.yaml): 0 matched — source.filter selects no "
                             "point of 'videos' (jobs/tags.yaml:")
    assert out[1] == ("    warning: jobs/tags.yaml:9: source.filter.must[0].key: filter key "
                      "'regoin' is in none of the 10 points of 'videos'; did you mean 'region'?")
    assert out[-1] == "Plan: nothing to do; 1 job selects no point."
    plan = project.run_json("plan", JOB)
    assert plan["jobs"]["tags"]["status"] == "empty"
    assert plan["warnings"] == [{
        "job": "tags", "file": "jobs/tags.yaml", "line": 9, "key": "source.filter.must[0].key",
        "message": "filter key 'regoin' is in none of the 10 points of 'videos'; did you mean "
                   "'region'?", "hint": None}]


def test_a_value_of_another_type_than_the_field_holds_is_a_warning(project):
    project.seed(10)
    project.edit(JOB, "      - key: region\n        match: {any: [US, GB, CA]}",
                 '      - key: views\n        match: {value: "2026"}')
    out = project.run("plan", JOB).stdout
    assert ("filter compares 'views' to \"2026\", but 'views' holds integers in the 10 points "
            "of 'videos' (write the number without quotes)") in out


def test_apply_warns_too_and_sends_nothing(http_project):
    http_project.seed(10)
    http_project.edit(JOB, "key: region", "key: regoin")
    out = http_project.run("apply", JOB).stdout.splitlines()
    assert out[0].startswith("tags (jobs/tags.yaml): 0 matched — source.filter selects no point")
    assert "did you mean 'region'?" in out[1] and out[1].startswith("    warning: ")
    applied = http_project.run_json("apply", JOB)
    assert [w["key"] for w in applied["warnings"]] == ["source.filter.must[0].key"]
    assert http_project.emulator.counting.posts() == 0


def test_a_filter_that_is_right_but_matches_no_value_says_so(project):
    project.seed(10)
    project.edit(JOB, "[US, GB, CA]", "[XX]")
    warnings = project.run_json("plan", JOB)["warnings"]
    assert len(warnings) == 1 and "its keys and value types match the sampled points" in \
        warnings[0]["message"]


def test_an_empty_collection_is_named(project):
    project.seed(1)
    with project.qdrant() as client:
        client.delete("videos", [1])
    plan = project.run_json("plan", JOB)
    assert plan["warnings"][0]["message"] == "collection 'videos' is empty"
    assert "vectors are not needed" in plan["warnings"][0]["hint"]


def test_validate_qdrant_checks_filter_keys_and_fields_against_the_data(project):
    project.seed(10)
    project.edit(JOB, "key: region", "key: regoin")
    project.edit(JOB, "fields: [title, channel_title, category, tags, description]",
                 "fields: [title, channel_title, category, tags, description, viewz]")
    assert project.run("validate", JOB).stdout == "ok: jobs/tags.yaml (job tags)\n"
    result = project.run("validate", JOB, "--qdrant", expect=1)
    lines = result.stdout.splitlines()
    assert lines[0] == "FAILED: jobs/tags.yaml (job tags)"
    assert "filter key 'regoin' is in none of the 10 points of 'videos'; did you mean " \
           "'region'?" in lines[1]
    assert "source.fields names 'viewz', which is in none of the 10 points of 'videos'; " \
           "did you mean 'views'?" in lines[2]
    data = project.run_json("validate", JOB, "--qdrant", expect=1)
    assert [w["key"] for w in data["warnings"]] == ["source.filter.must[0].key",
                                                    "source.fields[5]"]
    project.edit(JOB, "key: regoin", "key: region")
    project.edit(JOB, ", viewz]", "]")
    project.run("validate", JOB, "--qdrant")


def test_validate_qdrant_names_a_missing_collection(project):
    project.seed(3)
    project.edit(JOB, "collection: videos", "collection: vidoes")
    result = project.run("validate", JOB, "--qdrant", expect=1)
    assert "collection 'vidoes' not found in Qdrant (collections: videos)" in result.stderr


def test_every_field_condition_is_found_with_its_nested_key_and_where_it_is():
    data = {"must": [{"key": "a", "match": {"value": 1}},
                     {"should": [{"key": "b", "range": {"gt": 1}}]},
                     {"nested": {"key": "c", "filter": {"must": {"key": "d",
                                                                 "match": {"value": "x"}}}}},
                     {"is_empty": {"key": "e"}}],
            "must_not": {"key": "f", "match": {"any": ["y"]}},
            "min_should": {"conditions": [{"key": "g", "match": {"value": True}}],
                           "min_count": 1}}
    found = list(conditions(data, ("source", "filter")))
    assert [(c.key, c.check, c.path) for c in found] == [
        ("a", "match", ("source", "filter", "must", 0)),
        ("b", "range", ("source", "filter", "must", 1, "should", 0)),
        ("c[].d", "match", ("source", "filter", "must", 2, "nested", "filter", "must")),
        ("f", "match", ("source", "filter", "must_not")),
        ("g", "match", ("source", "filter", "min_should", "conditions", 0))]
    assert isinstance(found[0], Condition)


def test_key_paths_reach_values_as_qdrant_does():
    payload = {"a": {"b": 1}, "c": [{"d": "x"}, {"d": "y"}], "tags": ["p", "q"]}
    assert values_at(payload, "a.b") == [1]
    assert values_at(payload, "c[].d") == ["x", "y"]
    assert values_at(payload, "tags") == ["p", "q"]      # an array matches by its elements
    assert values_at(payload, "missing.key") == []
    assert [kind_of(v) for v in (1, 1.5, "x", "2026-01-01T00:00:00Z", True, None)] == [
        "integer", "number", "string", "datetime", "boolean", "null"]
