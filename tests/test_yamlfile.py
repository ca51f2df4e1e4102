"""YAML with line numbers and ${VAR} interpolation (runner/yamlfile.py): a variable named
like a secret never reaches a value that goes into requests."""

from __future__ import annotations

import pytest

from runner.errors import SpecError
from runner.yamlfile import load

ENV = {"OPENAI_API_KEY": "sk-secret", "TOPIC": "music", "MONKEY_NAME": "bob"}
SPEC = "description: ${OPENAI_API_KEY}\nprompt:\n  user: 'About ${TOPIC}'\n"


def prompt_only(path: tuple) -> bool:
    return path[:1] == ("prompt",)


def test_other_variables_are_interpolated_everywhere(tmp_path):
    (tmp_path / "job.yaml").write_text(SPEC)
    data, _ = load(tmp_path / "job.yaml", environ=ENV, sent=prompt_only)
    # a secret where nothing is sent (a description) is the user's business
    assert data == {"description": "sk-secret", "prompt": {"user": "About music"}}


@pytest.mark.parametrize("name", ["OPENAI_API_KEY", "GITHUB_TOKEN", "aws_secret_access",
                                  "DB_PASSWORD", "MONKEY_NAME", "UNSET_TOKEN"])
def test_a_secret_looking_variable_is_refused_where_it_would_be_sent(tmp_path, name):
    (tmp_path / "job.yaml").write_text(f"prompt:\n  user: 'x ${{{name}:-d}}'\n")
    with pytest.raises(SpecError) as caught:
        load(tmp_path / "job.yaml", "jobs/job.yaml", environ=ENV, sent=prompt_only)
    assert str(caught.value.where) == "jobs/job.yaml:2: prompt.user"
    assert caught.value.message.startswith(f"${{{name}}} would put a secret into every request")
    assert ENV.get(name, "sk-") not in caught.value.one_line() + (caught.value.hint or "")


def test_an_escaped_dollar_is_never_a_variable(tmp_path):
    (tmp_path / "job.yaml").write_text("prompt:\n  user: 'literal $${OPENAI_API_KEY}'\n")
    data, _ = load(tmp_path / "job.yaml", environ=ENV, sent=prompt_only)
    assert data["prompt"]["user"] == "literal ${OPENAI_API_KEY}"
