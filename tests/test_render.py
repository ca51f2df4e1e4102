"""Rendering: what a template sees, what is sent, and what the request key depends on."""

from __future__ import annotations

from pathlib import Path

import pytest

from runner.jobs import load_job
from runner.keys import request_key
from runner.project import load_project
from runner.render import RenderError, render_body

STARTER = Path(__file__).resolve().parent.parent / "runner" / "data" / "project"
VIDEO = {"title": "Live in Berlin", "channel_title": "Band", "category": "Music",
         "tags": ["live", "berlin"], "description": "A concert."}


def job_from(tmp_path: Path, spec: str):
    (tmp_path / "jobs").mkdir(parents=True, exist_ok=True)
    (tmp_path / "prompts").mkdir(exist_ok=True)
    for name in ("tags.system.j2", "tags.user.j2"):
        (tmp_path / "prompts" / name).write_text((STARTER / "prompts" / name).read_text())
    (tmp_path / "jobs" / "job.yaml").write_text(spec)
    return load_job(tmp_path / "jobs" / "job.yaml", load_project(tmp_path), tmp_path)


def starter(tmp_path: Path, replace: tuple[str, str] = ("", "")):
    text = (STARTER / "jobs" / "tags.yaml").read_text().replace(*replace)
    return job_from(tmp_path, text)


def test_a_template_sees_its_fields_the_point_id_and_the_whole_payload(tmp_path):
    job = job_from(tmp_path, """
source: {collection: c}
prompt: {user: "{{ id }} {{ title }} {{ payload.category }}"}
model: gpt-4o-mini
""")
    body = render_body(job, 7, VIDEO)
    assert body["messages"] == [{"role": "user", "content": "7 Live in Berlin Music"}]


def test_a_system_prompt_without_variables_is_rendered_once_and_identically(tmp_path):
    job = starter(tmp_path)
    assert not job.system.reads and job.user.reads
    first = render_body(job, 1, VIDEO)["messages"][0]
    second = render_body(job, 2, {**VIDEO, "title": "Other"})["messages"][0]
    assert first == second
    assert first["content"] == job.system.template.render({})


def test_payload_text_that_looks_like_a_template_is_sent_literally(tmp_path):
    job = starter(tmp_path)
    body = render_body(job, 1, {**VIDEO, "title": "{{ 7 * 7 }} {% if x %}"})
    assert "Title: {{ 7 * 7 }} {% if x %}" in body["messages"][1]["content"]


def test_the_key_covers_everything_sent_and_nothing_else(tmp_path):
    base = starter(tmp_path / "a")
    key = request_key("/v1/chat/completions", render_body(base, 1, VIDEO))
    same = starter(tmp_path / "b", ("Topics, a category", "Something else entirely"))
    assert request_key("/v1/chat/completions", render_body(same, 1, VIDEO)) == key
    for old, new in (("temperature: 0", "temperature: 1"), ("gpt-4o-mini", "gpt-4.1-mini"),
                     ("maxItems: 8", "maxItems: 9")):
        changed = starter(tmp_path / old.replace(" ", "").replace(":", ""), (old, new))
        assert request_key("/v1/chat/completions", render_body(changed, 1, VIDEO)) != key
    assert request_key("/v1/chat/completions", render_body(base, 1, {**VIDEO, "title": "x"})) != key


# ---- the sandbox: read-only, bounded ---------------------------------------------------

def inline(tmp_path: Path, user: str):
    return job_from(tmp_path, f"source: {{collection: c}}\nprompt: {{user: {user!r}}}\n"
                              "model: gpt-4o-mini\n")


def render_error(job, payload=VIDEO) -> RenderError:
    with pytest.raises(RenderError) as caught:
        render_body(job, 1, dict(payload))
    return caught.value


def test_a_template_cannot_change_the_payload_even_through_attr(tmp_path):
    # A call to .update() is refused at load (tests/test_bad_input.py); reached another
    # way, the immutable sandbox refuses it at render time, for that point.
    job = inline(tmp_path, "{{ (payload|attr('update'))({'title': 'x'}) }}{{ title }}")
    payload = dict(VIDEO)
    error = render_error(job, payload)
    assert "unsafe" in error.problem and payload == VIDEO


@pytest.mark.parametrize("template,problem", [
    ("{{ 'x' * 10**8 }}", "the template repeats a text 100,000,000 times (100,000,000 "
                          "characters, over 10,000,000)"),
    ("{{ title * 10**6 }}", "the template repeats a text 1,000,000 times (14,000,000 "
                            "characters, over 10,000,000)"),
    ("{{ tags * 10**7 }}", "the template repeats a list 10,000,000 times (20,000,000 items, "
                           "over 10,000,000)"),
    ("{{ 2 ** 100000000 }}", "the template raises to the power 100,000,000, over 10,000"),
])
def test_repetition_and_powers_are_bounded_before_they_eat_memory(tmp_path, template, problem):
    error = render_error(inline(tmp_path, template))
    assert error.problem == problem and str(error.where) == "jobs/job.yaml:2: prompt.user"


def test_small_repetitions_and_powers_still_work(tmp_path):
    body = render_body(inline(tmp_path, "{{ '-' * 3 }}{{ 2 ** 10 }}{{ title * 2 }}"), 1, VIDEO)
    assert body["messages"][0]["content"] == "---1024Live in BerlinLive in Berlin"
