"""The `batchrun` command line: options in, one call, results out.

Every command takes job files or folders (default: jobs/), --json for machine-readable
output with the same exit codes, and reports user errors as one line naming the file,
line and key. Exit codes: 0 success, 1 error, 2 (plan --detailed-exitcode) work pending,
3 (apply) finished with failed records, 130 interrupted.
"""

from __future__ import annotations

import functools
import json
import sys
import traceback
from pathlib import Path
from typing import Any, Callable

import click

from . import __version__, report
from .apply import Options, Workspace
from .demo import ensure_project, init as init_project, seed, with_emulator
from .errors import BatchrunError
from .progress import reporter
from .spec import ProjectContext, load_jobs, load_project

EXIT_PENDING = 2
EXIT_FAILED_RECORDS = 3


class State:
    def __init__(self, directory: Path, debug: bool):
        self.directory = directory
        self.debug = debug
        self.json = False


def _emit(data: Any) -> None:
    click.echo(json.dumps(data, indent=2, sort_keys=True, ensure_ascii=False, default=str))


def handle_errors(fn: Callable) -> Callable:
    """The one place errors become output and exit codes."""

    @functools.wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        state: State = click.get_current_context().obj
        state.json = bool(kwargs.get("as_json"))
        try:
            return fn(*args, **kwargs)
        except BatchrunError as exc:
            if state.debug:
                traceback.print_exc()
            if state.json:
                _emit({"error": exc.to_json()})
            else:
                click.echo(f"Error: {exc.one_line()}", err=True)
                if exc.hint:
                    click.echo(f"  hint: {exc.hint}", err=True)
            sys.exit(exc.exit_code)
        except KeyboardInterrupt:
            click.echo("Interrupted. Nothing is lost: rerun the command to resume.", err=True)
            sys.exit(130)

    return wrapper


json_option = click.option("--json", "as_json", is_flag=True,
                           help="Print machine-readable JSON (same exit codes).")
paths_argument = click.argument("paths", nargs=-1, type=click.Path())


def progress_option(fn: Callable) -> Callable:
    return click.option("--no-progress", is_flag=True,
                        help="Plain log lines instead of live progress bars.")(fn)


def _workspace(state: State, paths: tuple[str, ...], options: Options | None = None, *,
               no_progress: bool = False, project: ProjectContext | None = None) -> Workspace:
    project = project or load_project(state.directory)
    jobs = load_jobs(list(paths), project, state.directory)
    live = False if (no_progress or state.json) else None
    return Workspace(project, jobs, reporter(live=live), options)


def _echo_lines(lines: list[str]) -> None:
    for line in lines:
        click.echo(line)


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
      batchrun plan                 what apply would send, and its cost
      batchrun apply                do it
    """
    ctx.obj = State(Path(directory).resolve(), debug)


@cli.command()
@paths_argument
@click.option("--no-wait", is_flag=True, help="Return once batches are submitted; a later "
              "apply collects them (for CI).")
@click.option("--max-cost", type=float, metavar="USD", help="Refuse to submit when the "
              "estimated cost of this run exceeds USD.")
@click.option("--retry-failed", is_flag=True, help="Send again requests that failed for good.")
@click.option("--force", is_flag=True, help="Ignore stamps and the cache: resend everything "
              "selected (costs money).")
@click.option("--lock-timeout", type=float, default=0.0, metavar="SECONDS",
              help="Wait this long for another batchrun on the same state directory.")
@progress_option
@json_option
@click.pass_obj
@handle_errors
def apply(state: State, paths: tuple[str, ...], no_wait: bool, max_cost: float | None,
          retry_failed: bool, force: bool, lock_timeout: float, no_progress: bool,
          as_json: bool) -> None:
    """Bring the collection up to date: send what changed, write the results.

    \b
    Examples:
      batchrun apply                      every job in jobs/
      batchrun apply jobs/tags.yaml       one job
      batchrun apply --no-wait            submit and return (CI); rerun to collect
      batchrun apply --max-cost 5         refuse if the estimate exceeds $5
    """
    options = Options(wait=not no_wait, max_cost=max_cost, retry_failed=retry_failed,
                      force=force, lock_timeout=lock_timeout)
    ws = _workspace(state, paths, options, no_progress=no_progress)
    try:
        with ws.locked("apply"):
            outcome = ws.apply()
        if as_json:
            _emit(report.apply_json(ws, outcome))
        else:
            for line in report.apply_lines(ws, outcome):
                click.echo(line)
    finally:
        ws.report.close()
        ws.close()
    if outcome.failed:
        sys.exit(EXIT_FAILED_RECORDS)


@cli.command()
@paths_argument
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when nothing is to do, 2 when work is pending, 1 on error.")
@progress_option
@json_option
@click.pass_obj
@handle_errors
def plan(state: State, paths: tuple[str, ...], detailed_exitcode: bool, no_progress: bool,
         as_json: bool) -> None:
    """Show what apply would do, and what it would cost. Spends nothing.

    \b
    Examples:
      batchrun plan
      batchrun plan jobs/tags.yaml --detailed-exitcode   # for CI: 2 means work pending
    """
    ws = _workspace(state, paths, no_progress=no_progress)
    try:
        plans = ws.plan()
        if as_json:
            _emit(report.plan_json(ws, plans))
        else:
            for line in report.plan_lines(ws, plans):
                click.echo(line)
    finally:
        ws.report.close()
        ws.close()
    if detailed_exitcode and any(not p.done for p in plans.values()):
        sys.exit(EXIT_PENDING)


@cli.command()
@click.option("--speed", type=click.Choice(["demo", "instant"]), default="demo",
              show_default=True, help="How fast the emulator moves batches along.")
@click.option("--examples", default=5, show_default=True, metavar="N",
              help="Tagged videos to print at the end.")
@progress_option
@click.pass_obj
@handle_errors
def demo(state: State, speed: str, examples: int, no_progress: bool) -> None:
    """Tag 300 real YouTube videos with jobs/tags.yaml, against the emulator (free).

    Seeds the embedded Qdrant (.qdrant/) with the bundled sample videos, shows the plan,
    applies it with progress, and prints a few tagged videos. Writes the starter project
    (batchrun.yaml, jobs/, prompts/) first when the folder has none. Run it twice: the
    second run sends nothing.
    """
    written = ensure_project(state.directory)
    if written:
        click.echo(f"Wrote the starter project: {', '.join(written)}")
    project = with_emulator(load_project(state.directory))
    ws = _workspace(state, ("jobs/tags.yaml",), Options(emulator_speed=speed),
                    no_progress=no_progress, project=project)
    try:
        added = seed(ws.qdrant)
        click.echo(f"Qdrant: collection 'videos' has {ws.qdrant.count('videos').count} videos"
                   + (f" ({added} added now)" if added else "") + ".\n")
        _echo_lines(report.plan_lines(ws, ws.plan()))
        click.echo("")
        with ws.locked("demo"):
            outcome = ws.apply()
        ws.report.close()
        _echo_lines(report.apply_lines(ws, outcome))
        click.echo("")
        _echo_lines(report.show_lines(ws, ws.jobs[0], limit=examples))
    finally:
        ws.report.close()
        ws.close()


@cli.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.pass_obj
@handle_errors
def init(state: State, directory: str) -> None:
    """Create batchrun.yaml, jobs/, prompts/ and schemas/ with a commented example.

    Refuses to overwrite any file. The example job tags videos; `batchrun demo` runs it.
    """
    target = (state.directory / directory).resolve()
    target.mkdir(parents=True, exist_ok=True)
    for rel in init_project(target):
        click.echo(f"created {rel}")
    click.echo("Next: edit jobs/tags.yaml, then `batchrun validate` and `batchrun plan`.")


def main() -> None:
    cli(prog_name="batchrun")


if __name__ == "__main__":
    main()
