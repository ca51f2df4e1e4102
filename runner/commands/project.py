"""Commands that make a project: `init` (scaffold one) and `demo` (run the starter
project on bundled videos, for free)."""

from __future__ import annotations

import click

from ..errors import BatchrunError
from . import State, echo_lines, handle_errors, lock_option, open_workspace, progress_option


@click.command()
@click.option("--speed", type=click.Choice(["demo", "instant"]), default="demo",
              show_default=True, help="How fast the emulator moves batches along.")
@click.option("--examples", default=5, show_default=True, metavar="N",
              help="Tagged videos to print at the end.")
@click.option("--dialect", type=click.Choice(["openai", "anthropic", "azure"]),
              default="openai", show_default=True,
              help="Which API the emulator answers as (anthropic: with a Claude model).")
@progress_option
@lock_option
@click.pass_obj
@handle_errors
def demo(state: State, speed: str, examples: int, dialect: str, no_progress: bool) -> None:
    """Tag 240 of 300 real YouTube videos with jobs/tags.yaml, against the emulator (free).

    Seeds the embedded Qdrant (.qdrant/) with the bundled sample videos, shows the plan,
    applies it with progress, and prints a few tagged videos. Writes the starter project
    (batchrun.yaml, jobs/, prompts/) first when the folder has none. Run it twice: the
    second run sends nothing.

    \b
    Examples:
      batchrun demo
      batchrun demo --speed instant    no waiting between batch states
      batchrun demo --dialect anthropic   as Anthropic's Message Batches would
    """
    from .. import tables, views
    from ..apply import apply as run_apply
    from ..demo import for_dialect, seed, with_emulator
    from ..jobs import load_jobs
    from ..project import load_project
    from ..starter import ensure_project
    from ..workspace import Options

    written = ensure_project(state.directory)
    if written:
        click.echo(f"Wrote the starter project: {', '.join(written)}")
    project = with_emulator(load_project(state.directory))
    if project.config.qdrant.url:
        raise BatchrunError("the demo runs on the embedded Qdrant only, and batchrun.yaml "
                            f"points at {project.config.qdrant.url}",
                            hint="run `batchrun demo` in an empty folder")
    jobs = load_jobs(["jobs/tags.yaml"], project, state.directory)
    project = with_emulator(project, dialect)
    jobs = [for_dialect(job, project) for job in jobs]
    with open_workspace(state, ("jobs/tags.yaml",), Options(emulator_speed=speed),
                        no_progress=no_progress, project=project, jobs=jobs) as ws:
        added = seed(ws.qdrant)
        click.echo(f"Qdrant: collection 'videos' has {ws.qdrant.count('videos').count} videos"
                   + (f" ({added} added now)" if added else "") + ".\n")
        echo_lines(views.plan_lines(ws, ws.plan()))
        click.echo("")
        with ws.locked("demo"):
            outcome = run_apply(ws)
        ws.progress.close()
        echo_lines(views.apply_lines(ws, outcome))
        click.echo("")
        echo_lines(tables.show_lines(ws, ws.jobs[0], limit=examples))


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.pass_obj
@handle_errors
def init(state: State, directory: str) -> None:
    """Create batchrun.yaml, jobs/, prompts/ and schemas/ with a commented example.

    Refuses to overwrite any file. The example job tags videos; `batchrun demo` runs it.

    \b
    Examples:
      batchrun init my-project && cd my-project
      batchrun init .                  in the current folder
    """
    from ..starter import init as init_project

    target = (state.directory / directory).resolve()
    target.mkdir(parents=True, exist_ok=True)
    for rel in init_project(target):
        click.echo(f"created {rel}")
    click.echo("Next: edit jobs/tags.yaml, then `batchrun validate` and `batchrun plan`.")
