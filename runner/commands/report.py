"""`batchrun report`: one self-contained HTML page of what the jobs did — and `--report`,
which apply, costs and demo take to write that page after they ran."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import click

from ..errors import BatchrunError, Location
from . import (
    State,
    echo_lines,
    emit_json,
    handle_errors,
    json_option,
    open_workspace,
    paths_argument,
    progress_option,
)

if TYPE_CHECKING:
    from ..records import JobRecord
    from ..report import Written
    from ..workspace import Workspace

DEFAULT_PATH = "report.html"


def _not_a_spec(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """`--report jobs/tags.yaml` would take the job for the report's path: refuse it."""
    if value is not None and Path(value).suffix in (".yaml", ".yml"):
        raise click.BadParameter(
            f"{value} is a job spec, not where to write the report; write "
            f"`--report={DEFAULT_PATH} {value}`, or put --report after the job paths")
    return value


def report_option(fn: Callable) -> Callable:
    """--report [PATH], for the commands that can end by writing the report."""
    return click.option("--report", "report_path", is_flag=False, flag_value=DEFAULT_PATH,
                        default=None, metavar="PATH", callback=_not_a_spec,
                        help=f"Then write the report page to PATH (default {DEFAULT_PATH}) "
                             "and print where it is.")(fn)


def target(state: State, value: str) -> Path:
    """Where to write the report: PATH relative to the project folder (-C), whose folder
    must exist."""
    path = (state.directory / value).resolve()
    if path.is_dir():
        raise BatchrunError("the report's path is a folder", where=Location(value),
                            hint=f"name a file, e.g. {Path(value) / DEFAULT_PATH}")
    if not path.parent.is_dir():
        raise BatchrunError("no such folder for the report", where=Location(value),
                            hint=f"create {path.parent} first, or name another path")
    return path


def write(ws: Workspace, state: State, value: str, *, every_batch: bool,
          previous: Mapping[str, JobRecord] | None = None) -> Written:
    """The report of `ws` at PATH `value`; `every_batch`: the project's report (no job
    paths named), listing every batch of the ledger, not only those of the jobs loaded."""
    from ..report import write_report

    return write_report(ws, target(state, value), previous=previous, every_batch=every_batch)


@click.command()
@paths_argument
@click.option("-o", "--output", default=DEFAULT_PATH, show_default=True, metavar="PATH",
              help="Where to write the page.")
@progress_option
@json_option
@click.pass_obj
@handle_errors
def report(state: State, paths: tuple[str, ...], output: str, no_progress: bool,
           as_json: bool) -> None:
    """Write one self-contained HTML page of the jobs: counts, answers, costs, failures.

    Per job: its points by state (the counts `plan` prints), the spec's model, endpoint
    and fingerprint, what changed since the last apply, the answers beside their inputs
    (paged, with a text filter and one per output field) and their distributions, every
    failed request and every point that could not be rendered; then tokens and costs per
    batch and per day, at batch and at standard prices. The file needs no server and
    fetches nothing: open it from a CI artifact or an e-mail. Reads Qdrant and the ledger
    like `plan`, spends nothing and takes no lock.

    \b
    Examples:
      batchrun report                          every job, into report.html
      batchrun report jobs/tags.yaml -o tags.html
      batchrun apply --report                  apply, then write report.html
    """
    from .. import tables

    with open_workspace(state, paths, no_progress=no_progress) as ws:
        written = write(ws, state, output, every_batch=not paths)
        if as_json:
            emit_json(tables.report_json(written, with_jobs=True))
        else:
            echo_lines(tables.report_lines(written, with_jobs=True))
