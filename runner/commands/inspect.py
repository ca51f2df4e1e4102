"""Commands that read without changing anything: `validate`, `show`, `costs`."""

from __future__ import annotations

import sys

import click

from ..errors import BatchrunError
from . import (
    State,
    echo_lines,
    emit_json,
    handle_errors,
    json_option,
    open_workspace,
    paths_argument,
)


@click.command()
@paths_argument
@json_option
@click.pass_obj
@handle_errors
def validate(state: State, paths: tuple[str, ...], as_json: bool) -> None:
    """Check specs, templates, filters, schemas and batch JSONL files. No API, no Qdrant.

    \b
    Examples:
      batchrun validate                     every spec in jobs/
      batchrun validate jobs/tags.yaml
      batchrun validate batch_output.jsonl  a batch input or output file
    """
    from .. import tables
    from ..batchfile import check_file
    from ..jobs import load_jobs
    from ..project import load_project

    project = load_project(state.directory)
    files = [p for p in paths if p.endswith(".jsonl")]
    specs = [p for p in paths if not p.endswith(".jsonl")]
    jobs = load_jobs(specs, project, state.directory) if specs or not files else []
    checks = {path: check_file(state.directory / path, display=path) for path in files}
    if as_json:
        emit_json(tables.validate_json(jobs, checks))
    else:
        echo_lines(tables.validate_lines(jobs, checks))
    if any(not check.ok for check in checks.values()):
        sys.exit(1)


@click.command()
@click.argument("job_name", metavar="JOB")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="Points to show.")
@click.option("--failed", is_flag=True, help="List failed requests and why, instead.")
@json_option
@click.pass_obj
@handle_errors
def show(state: State, job_name: str, limit: int, failed: bool, as_json: bool) -> None:
    """Points with their inputs and written results side by side.

    \b
    Examples:
      batchrun show tags --limit 3
      batchrun show tags --failed
    """
    from .. import tables
    from ..jobs import load_jobs
    from ..project import load_project

    project = load_project(state.directory)
    jobs = {j.name: j for j in load_jobs([], project, state.directory)}
    if job_name not in jobs:
        raise BatchrunError(f"no job named {job_name!r}",
                            hint=f"jobs: {', '.join(sorted(jobs)) or 'none'}")
    with open_workspace(state, (), no_progress=True, project=project,
                        jobs=[jobs[job_name]]) as ws:
        job = ws.jobs[0]
        if failed:
            rows = tables.failure_rows(ws, limit=limit)
            if as_json:
                emit_json({"failures": rows})
            else:
                echo_lines(tables.failure_lines(ws, job, rows))
        elif as_json:
            emit_json(tables.show_json(ws, job, limit=limit))
        else:
            echo_lines(tables.show_lines(ws, job, limit=limit))


@click.command()
@click.option("--by", type=click.Choice(["job", "batch", "model", "day", "provider"]),
              default="job", show_default=True, help="How to group the report.")
@json_option
@click.pass_obj
@handle_errors
def costs(state: State, by: str, as_json: bool) -> None:
    """Tokens and dollars spent, from the manifest, with the saving over standard prices.

    \b
    Examples:
      batchrun costs
      batchrun costs --by model --json
      batchrun costs --by provider         OpenAI, Anthropic, Azure side by side
    """
    from .. import tables
    from ..costs import project_costs
    from ..project import load_project

    rows = project_costs(load_project(state.directory), by,
                         warn=lambda line: click.echo(line, err=True))
    if as_json:
        emit_json(rows)
    else:
        echo_lines(tables.cost_lines(rows, by))
