"""Commands that make a project: `init` (scaffold one) and `demo` (run the starter
project on bundled videos, for free)."""

from __future__ import annotations

from typing import Any

import click

from ..errors import BatchrunError
from . import State, echo_lines, handle_errors, lock_option, open_workspace, progress_option
from .report import DEFAULT_PATH, report_option
from .report import write as write_report


@click.command()
@click.option("--speed", type=click.Choice(["demo", "instant"]), default="demo",
              show_default=True, help="How fast the emulator moves batches along.")
@click.option("--examples", type=click.IntRange(min=0), default=5, show_default=True,
              metavar="N", help="Tagged videos to print at the end (0: none).")
@report_option
@click.option("--dialect", type=click.Choice(["openai", "anthropic", "azure"]),
              default="openai", show_default=True,
              help="Which API the emulator answers as (anthropic: with a Claude model).")
@progress_option
@lock_option
@click.pass_obj
@handle_errors
def demo(state: State, speed: str, examples: int, dialect: str, report_path: str | None,
         no_progress: bool) -> None:
    """Tag and embed 240 real YouTube videos against the emulator (free), then search.

    Runs jobs/tags.yaml and jobs/embed.yaml on 240 of 300 bundled videos.
    Seeds the embedded Qdrant (.qdrant/) with the bundled sample videos and adds the named
    vector `embedding` that jobs/embed.yaml writes (as `apply --create-vectors` does),
    shows the plan, applies it with progress, prints a few tagged videos, runs one vector
    search in Qdrant (the emulator's vectors are hashes of the text, not meanings: the
    neighbours show the plumbing, not similarity), and writes the report page
    (report.html, or --report PATH). Writes the starter project (batchrun.yaml, jobs/,
    prompts/) first when the folder has none. Run it twice: the second run sends nothing.

    \b
    Examples:
      batchrun demo
      batchrun demo --speed instant    no waiting between batch states
      batchrun demo --dialect anthropic   as Anthropic's Message Batches would
    """
    from .. import tables, views
    from ..apply import apply as run_apply
    from ..demo import add_vectors, demo_jobs, ensure_demo_jobs, for_dialect, seed, with_emulator
    from ..jobs import load_jobs
    from ..project import load_project
    from ..workspace import Options

    written = ensure_demo_jobs(state.directory)
    if written:
        click.echo(f"Wrote the starter project: {', '.join(written)}")
    project = with_emulator(load_project(state.directory))
    if project.config.qdrant.url:
        raise BatchrunError("the demo runs on the embedded Qdrant only, and batchrun.yaml "
                            f"points at {project.config.qdrant.url}",
                            hint="run `batchrun demo` in an empty folder")
    paths = demo_jobs(dialect)
    jobs = load_jobs(list(paths), project, state.directory)
    project = with_emulator(project, dialect)
    jobs = [for_dialect(job, project) for job in jobs]
    with open_workspace(state, paths, Options(emulator_speed=speed),
                        no_progress=no_progress, project=project, jobs=jobs) as ws:
        added = seed(ws.qdrant)
        click.echo(f"Qdrant: collection 'videos' has {ws.qdrant.count('videos').count} videos"
                   + (f" ({added} added now)" if added else "") + ".")
        echo_lines(add_vectors(ws.qdrant, ws.jobs))
        click.echo("")
        echo_lines(views.plan_lines(ws, ws.plan()))
        click.echo("")
        with ws.locked("demo"):
            before = ws.ledger.jobs()
            outcome = run_apply(ws)
        ws.progress.close()
        echo_lines(views.apply_lines(ws, outcome))
        click.echo("")
        if examples:
            tagger = next(job for job in ws.jobs if job.output_vector is None)
            echo_lines(tables.show_lines(ws, tagger, limit=examples))
            click.echo("")
        embedder = next((job for job in ws.jobs if job.output_vector is not None), None)
        echo_lines(_search_lines(ws, embedder) if embedder else [
            "Anthropic has no embeddings endpoint: the demo left jobs/embed.yaml out."])
        click.echo("")
        page = write_report(ws, state, report_path or DEFAULT_PATH, every_batch=True,
                            previous=before)
        echo_lines(tables.report_lines(page))


def _search_lines(ws: Any, job: Any) -> list[str]:
    """One vector search over what `job` wrote, said for what it is on the emulator."""
    from ..demo import QUERY, nearest

    hits = nearest(ws, job, QUERY)
    return [f"Vector search in Qdrant: the {len(hits)} videos nearest to {QUERY!r} "
            f"(vector {job.output_vector!r}, {job.spec.model}):",
            *(f"  {score:.3f}  {title}" for title, score in hits),
            "The emulator's vectors are deterministic hashes of the text, not of its meaning:",
            "these neighbours show that the vectors are written where Qdrant searches them,",
            "not that the videos are alike. With provider: openai they are real embeddings."]


@click.command()
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@click.option("--collection", metavar="NAME",
              help="Write a job that fits this collection, from a sample of its payloads.")
@click.option("--qdrant", "qdrant_location", metavar="PATH|URL",
              help="With --collection: where the collection is — an embedded Qdrant folder "
                   "or a server URL (default: the project's, else DIRECTORY/.qdrant).")
@click.option("--job", "job_name", default="summary", show_default=True, metavar="NAME",
              help="With --collection: the job's name.")
@click.pass_obj
@handle_errors
def init(state: State, directory: str, collection: str | None, qdrant_location: str | None,
         job_name: str) -> None:
    """Create batchrun.yaml, jobs/, prompts/ and schemas/ with a commented example.

    Refuses to overwrite any file. The example job tags videos; `batchrun demo` runs it.
    batchrun.yaml says how to load your own data (a payload-only collection works:
    vectors are not needed).

    With --collection NAME, reads a sample of that collection instead and writes a job
    that works on it as written: its fields are the collection's payload keys, its
    prompt shows each of them, and it asks for one output field, to edit. In a folder
    that has a batchrun.yaml already, only the job and its prompts are written.

    \b
    Examples:
      batchrun init my-project && cd my-project
      batchrun init .                  in the current folder
      batchrun init . --collection articles
      batchrun init my-project --collection articles --qdrant http://localhost:6333
    """
    from ..starter import init as init_project

    target = (state.directory / directory).resolve()
    if collection is None:
        if qdrant_location:
            raise BatchrunError("--qdrant says where --collection is; give --collection too")
        target.mkdir(parents=True, exist_ok=True)
        for rel in init_project(target):
            click.echo(f"created {rel}")
        click.echo("Next: the example job reads a collection 'videos' — `batchrun demo` loads "
                   "sample videos here. For your own data (a payload-only collection works), "
                   "see the top of batchrun.yaml, then `batchrun init --collection NAME .`; "
                   "then `batchrun validate` and `batchrun plan`.")
        return
    written, job = _init_for_collection(state, target, collection, qdrant_location, job_name)
    for rel in written:
        click.echo(f"created {rel}")
    # The job's own file: the folder may hold other jobs (the starter's read 'videos').
    spec = f"jobs/{job}.yaml"
    click.echo(f"Next: `batchrun render {job}` shows the request a point makes, `batchrun "
               f"try {job}` answers 5 points now, then `batchrun plan {spec}` and "
               f"`batchrun apply {spec}`.")


def _init_for_collection(state: State, target: Any, collection: str, location: str | None,
                         job: str) -> tuple[list[str], str]:
    """Sample the collection where it is, and write a job that fits it."""
    import os
    from dataclasses import replace

    from ..datacheck import sample
    from ..project import ProjectContext, load_project
    from ..select import connect
    from ..spec import JOB_NAME, PROJECT_FILE, Project, QdrantConfig
    from ..starter import init_for_collection

    if not JOB_NAME.match(job):
        raise BatchrunError(f"job name {job!r} may only use letters, digits, '_', '.' and "
                            "'-', at most 64, starting with a letter or digit")
    # The folder's own batchrun.yaml, or the defaults (never a parent folder's project).
    project = load_project(target) if (target / PROJECT_FILE).is_file() else \
        ProjectContext(target, Project(), None)
    qdrant = None
    if location:
        url = location.startswith(("http://", "https://"))
        folder = str((state.directory / location).resolve())
        # batchrun.yaml names the folder relative to the project, so the two move together
        qdrant = {"url": location} if url else {"path": os.path.relpath(folder, target)}
        config = QdrantConfig(url=location) if url else QdrantConfig(path=folder)
        project = replace(project, config=project.config.model_copy(update={"qdrant": config}))
    client = connect(project)
    try:
        if not client.collection_exists(collection):
            names = sorted(c.name for c in client.get_collections().collections)
            where_text = location or project.config.qdrant.url or str(
                target / (project.config.qdrant.path or ".qdrant"))
            raise BatchrunError(
                f"collection {collection!r} not found in the Qdrant at {where_text} ("
                + (f"collections: {', '.join(names)}" if names else "it has no collections")
                + ")", hint="name a collection it has, or say where yours is with --qdrant "
                            "PATH|URL")
        data = sample(client, collection, limit=200)
    finally:
        client.close()
    if not data.payloads:
        raise BatchrunError(f"collection {collection!r} is empty: there is nothing to fit a "
                            "job to", hint="load points first (payloads are enough; vectors "
                                           "are not needed), then run init again")
    target.mkdir(parents=True, exist_ok=True)
    return init_for_collection(target, collection, job, data, qdrant), job
