"""The `batchrun` command line: the group, its global options, and its commands.

Every job command takes job files or folders (default: jobs/), --json for machine-readable
output with the same exit codes, and reports user errors as one line naming the file,
line and key (errorhandler.py). Exit codes: 0 success, 1 error, 2 (plan
--detailed-exitcode) work pending, 3 (apply) finished with failed records, 130
interrupted. Each command lives in runner/commands/; none loads the openai SDK or
qdrant-client until it needs them, so `batchrun --help` starts at once.
"""

from __future__ import annotations

from pathlib import Path

import click

from . import __version__
from .commands import State
from .commands.apply import apply
from .commands.gc import gc
from .commands.inspect import costs, show, validate
from .commands.plan import plan
from .commands.project import demo, init
from .commands.render import render
from .commands.repair import repair
from .commands.report import report
from .commands.stages import cancel, collect, prepare, status, submit
from .commands.tryout import try_command
from .emulator.command import emulator_command


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
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


for command in (apply, plan, render, try_command, prepare, submit, status, collect, cancel,
                validate, show, costs, report, repair, gc, demo, init):
    cli.add_command(command)


cli.add_command(emulator_command)


def main() -> None:
    cli(prog_name="batchrun")


if __name__ == "__main__":
    main()
