"""Commands that read without changing anything: `validate`, `show`, `costs`."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any

import click

from ..errors import BatchrunError
from . import (
    State,
    echo_lines,
    emit_json,
    handle_errors,
    json_option,
    open_workspace,
    partition_option,
    paths_argument,
    project_of,
)
from .report import report_option
from .report import write as write_report

if TYPE_CHECKING:
    from ..batchfile import FileCheck
    from ..datacheck import DataWarning
    from ..jobs import Job


@click.command()
@paths_argument
@click.option("--qdrant", "with_data", is_flag=True,
              help="Also read a sample of each job's collection: do the keys its filter and "
                   "source.fields name appear there, with values of the type compared?")
@json_option
@click.pass_obj
@handle_errors
def validate(state: State, paths: tuple[str, ...], with_data: bool, as_json: bool) -> None:
    """Check specs, templates, filters, schemas and batch JSONL files. No API, no Qdrant.

    With --qdrant, also checks each job against a sample of its collection (the first
    500 points): a filter key or a source.fields name that no sampled point has, with
    the likely word, and a filter value of another type than the field holds
    (year: "2026" on integers). Exits 1 when it finds any.

    \b
    Examples:
      batchrun validate                     every spec in jobs/
      batchrun validate jobs/tags.yaml
      batchrun validate --qdrant            against the data too
      batchrun validate batch_output.jsonl  a batch input or output file
    """
    from ..jobs import load_jobs
    from ..project import load_project

    project = load_project(state.directory)
    files = [p for p in paths if p.endswith(".jsonl")]
    specs = [p for p in paths if not p.endswith(".jsonl")]
    jobs = load_jobs(specs, project, state.directory) if specs or not files else []
    checks = _check_files(state, files)
    warnings = _data_warnings(project, jobs) if with_data else []
    if as_json:
        emit_json(_validate_json(jobs, checks, warnings))
    else:
        echo_lines(_validate_lines(jobs, checks, warnings))
    if any(not check.ok for check in checks.values()) or warnings:
        sys.exit(1)


def _check_files(state: State, files: list[str]) -> dict[str, FileCheck]:
    """Each batch JSONL file named on the command line, checked line by line."""
    if not files:
        return {}        # spec-only validate loads no answer parsing
    from ..batchfile import check_file
    return {path: check_file(state.directory / path, display=path) for path in files}


def _validate_json(jobs: list[Job], checks: dict[str, FileCheck],
                  warnings: list[DataWarning] | None = None) -> dict[str, Any]:
    flagged = {w.job for w in warnings or ()}
    checked: list[dict[str, Any]] = [{"file": job.file, "job": job.name,
                                      "ok": job.name not in flagged} for job in jobs]
    checked += [{"file": path, "kind": c.summary.kind, "lines": c.summary.lines, "ok": c.ok,
                 "problems": c.problem_count} for path, c in checks.items()]
    return {"checked": checked,
            "problems": [str(p) for c in checks.values() for p in c.problems],
            "warnings": [w.to_json() for w in warnings or ()]}


def _validate_lines(jobs: list[Job], checks: dict[str, FileCheck],
                   warnings: list[DataWarning] | None = None) -> list[str]:
    lines = []
    for job in jobs:
        found = [w for w in warnings or () if w.job == job.name]
        lines.append(f"{'FAILED' if found else 'ok'}: {job.file} (job {job.name})")
        lines.extend(f"  warning: {w.text()}" for w in found)
    for path, check in checks.items():
        count = check.summary.lines
        lines.append(f"{'ok' if check.ok else 'FAILED'}: {path} ({check.summary.kind} file, "
                     f"{count:,} line{'s' * (count != 1)})")
    return lines + [str(p) for c in checks.values() for p in c.problems]


def _data_warnings(project: Any, jobs: list[Any]) -> list[Any]:
    """Each job checked against a sample of its collection (validate --qdrant)."""
    from ..datacheck import check_job, sample
    from ..select import Selection, connect

    client = connect(project)
    try:
        samples: dict[str, Any] = {}
        warnings = []
        for job in jobs:
            Selection(client, job, page=1)    # the collection exists, or where to look
            collection = job.spec.source.collection
            if collection not in samples:
                samples[collection] = sample(client, collection)
            warnings.extend(check_job(job, samples[collection]))
        return warnings
    finally:
        client.close()


@click.command()
@click.argument("job_name", metavar="JOB")
@click.option("--limit", type=click.IntRange(min=1), default=10, show_default=True,
              help="Points to show.")
@click.option("--failed", is_flag=True, help="List failed requests, and points that cannot "
              "be sent, and why, instead.")
@json_option
@partition_option
@click.pass_obj
@handle_errors
def show(state: State, job_name: str, limit: int, failed: bool, as_json: bool) -> None:
    """Points with their inputs and written results side by side. JOB is a job's name or
    its spec file.

    \b
    Examples:
      batchrun show tags --limit 3
      batchrun show jobs/tags.yaml --failed
    """
    from .. import tables
    from ..jobs import load_jobs
    project = project_of(state)
    jobs = {j.name: j for j in load_jobs([], project, state.directory)}
    by_file = {j.file: j.name for j in jobs.values()}
    job_name = by_file.get(job_name.removeprefix("./"), job_name)
    if job_name not in jobs:
        raise BatchrunError(f"no job named {job_name!r}",
                            hint=f"jobs: {', '.join(sorted(jobs)) or 'none'}")
    with open_workspace(state, (), no_progress=True, project=project,
                        jobs=[jobs[job_name]]) as ws:
        job = ws.jobs[0]
        if failed:
            rows = tables.failure_rows(ws, limit=limit)
            points = tables.point_failure_rows(ws, limit=limit)
            if as_json:
                emit_json({"failures": rows, "point_failures": points})
            else:
                echo_lines(tables.failure_lines(ws, job, rows, points))
        elif as_json:
            emit_json(tables.show_json(ws, job, limit=limit))
        else:
            echo_lines(tables.show_lines(ws, job, limit=limit))


@click.command()
@click.option("--by", type=click.Choice(["job", "batch", "model", "day", "provider"]),
              default="job", show_default=True, help="How to group the report.")
@report_option
@json_option
@partition_option
@click.pass_obj
@handle_errors
def costs(state: State, by: str, report_path: str | None, as_json: bool) -> None:
    """Tokens and dollars spent, from the manifest, with the saving over standard prices.

    \b
    Examples:
      batchrun costs
      batchrun costs --by model --json
      batchrun costs --report costs.html   also the report page, with its cost charts
      batchrun costs --by provider         OpenAI, Anthropic, Azure side by side
    """
    from .. import tables
    from ..costs import project_costs
    project = project_of(state)
    rows = project_costs(project, by, warn=lambda line: click.echo(line, err=True))
    written = None
    if report_path is not None:
        with open_workspace(state, (), no_progress=True, project=project) as ws:
            written = write_report(ws, state, report_path, every_batch=True)
    if as_json:
        emit_json({**rows, **({"report": tables.report_json(written)} if written else {})})
    else:
        echo_lines(tables.cost_lines(rows, by) + (tables.report_lines(written) if written
                                                  else []))
