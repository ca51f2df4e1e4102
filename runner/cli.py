"""The `batchrun` command line: the group, its global options, and its commands.

Every job command takes job files or folders (default: jobs/), --json for machine-readable
output with the same exit codes, and reports user errors as one line naming the file,
line and key (errorhandler.py). Exit codes: 0 success, 1 error, 2 (plan
--detailed-exitcode) work pending, 3 (apply) finished with failed records, 130
interrupted. Each command lives in runner/commands/; none loads the openai SDK or
qdrant-client until it needs them, so `batchrun --help` starts at once.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from . import __version__
from .commands import State

# Each command's home (module: attribute), imported only when that command runs or its
# help is shown: `batchrun validate` need not load what `apply` or the emulator load.
COMMANDS = {
    "apply": ".commands.apply:apply",
    "cancel": ".commands.stages:cancel",
    "collect": ".commands.stages:collect",
    "costs": ".commands.inspect:costs",
    "demo": ".commands.project:demo",
    "emulator": ".emulator.command:emulator_command",
    "gc": ".commands.gc:gc",
    "init": ".commands.project:init",
    "plan": ".commands.plan:plan",
    "prepare": ".commands.stages:prepare",
    "render": ".commands.render:render",
    "repair": ".commands.repair:repair",
    "report": ".commands.report:report",
    "show": ".commands.inspect:show",
    "status": ".commands.stages:status",
    "submit": ".commands.stages:submit",
    "try": ".commands.tryout:try_command",
    "validate": ".commands.inspect:validate",
}


class LazyGroup(click.Group):
    """A group whose commands are imported by name, on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        home = COMMANDS.get(cmd_name)
        if home is None:
            return None
        module, attribute = home.split(":")
        command: click.Command = getattr(importlib.import_module(module, __package__), attribute)
        return command

    @property
    def every_command(self) -> dict[str, click.Command]:
        """Name → command, every one imported (docs and tests walk them all)."""
        ctx = click.Context(self)
        return {name: command for name in self.list_commands(ctx)
                if (command := self.get_command(ctx, name)) is not None}


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="batchrun")
@click.option("-C", "--directory", type=click.Path(file_okay=False, exists=True),
              default=".", help="Run as if started in this directory (the project root).")
@click.option("--debug", is_flag=True, help="Show tracebacks for errors.")
@click.pass_context
def cli(ctx: click.Context, directory: str, debug: bool) -> None:
    """batchrun: make-like LLM batch jobs over a Qdrant collection.

    Job specs (YAML, in jobs/) say which points to read, how to turn each into a
    request, and where the answer goes. `batchrun apply` sends only what changed,
    through the OpenAI Batch API, and writes the results back into Qdrant.

    \b
    Quick start:
      batchrun demo                 try it on bundled videos, for free
      batchrun render tags          the exact request apply would send for a point
      batchrun try tags             answers for 5 points now (synchronous API)
      batchrun plan                 what apply would send, and its cost
      batchrun apply                do it
    """
    ctx.obj = State(Path(directory).resolve(), debug)


def main() -> None:
    cli(prog_name="batchrun")


if __name__ == "__main__":
    main()
