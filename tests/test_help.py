"""Every command's --help is documentation: a summary and at least one example."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from runner.cli import cli

COMMANDS = sorted(cli.every_command)


def test_every_command_is_listed_in_the_top_level_help():
    text = CliRunner().invoke(cli, ["--help"]).stdout
    for name in COMMANDS:
        assert f"  {name} " in text


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_examples_in_its_help(name):
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0
    assert "Examples:" in result.stdout, f"batchrun {name} --help has no examples"
    assert f"batchrun {name}" in result.stdout.split("Examples:")[1]
