"""`batchrun try`: a job on a few points now, through the synchronous API."""

from __future__ import annotations

import sys

import click

from ..errors import BatchrunError
from . import (
    EXIT_FAILED_RECORDS,
    State,
    echo_lines,
    emit_json,
    handle_errors,
    json_option,
    lock_option,
    open_workspace,
)
from .render import id_option, one_job


@click.command("try")
@click.argument("job_name", metavar="JOB")
@id_option
@click.option("--sample", type=click.IntRange(min=1), default=None, metavar="N",
              help="Without --id: N points of a deterministic sample of the selected points "
                   "(default 5), the same ones on every run, so reruns compare.")
@click.option("--max-cost", type=float, metavar="USD",
              help="Refuse to send when the estimate, at standard prices, exceeds USD.")
@click.option("--no-cache", is_flag=True,
              help="Send every point even when its answer is cached, and keep no answer.")
@click.option("--write", is_flag=True,
              help="Write the valid answers to Qdrant, stamped as apply would (default: "
                   "write nothing there).")
@click.option("--concurrency", type=click.IntRange(1, 64), default=8, show_default=True,
              help="Requests in flight at once.")
@lock_option
@json_option
@click.pass_obj
@handle_errors
def try_command(state: State, job_name: str, ids: tuple[str, ...], sample: int | None,
                max_cost: float | None, no_cache: bool, write: bool, concurrency: int,
                as_json: bool) -> None:
    """Run a job on a few points now, through the synchronous API, and show the answers.

    JOB is a job name or its spec file. Each point's request is exactly the one apply
    would send (see `batchrun render`); it goes to the standard endpoint at once, and
    its answer is validated like a batch answer and shown beside the point's inputs,
    failures with their reason. Costs are at standard prices — about twice the Batch
    API's — estimated before anything is sent, and added up after; the manifest and
    `batchrun costs` show them apart from batch spend. Each valid answer is kept in the
    result cache under its request key, so the next apply writes that point without
    paying again; an answer already cached is shown, not bought twice. Nothing is
    written to Qdrant unless --write. Exits 3 when a point got no valid answer.

    \b
    Examples:
      batchrun try tags                     5 points of a deterministic sample
      batchrun try tags --sample 20 --max-cost 0.05
      batchrun try tags --id 7 --id 12      these points
      batchrun try tags --json | jq '.points[] | {id, status, answer}'
    """
    from .. import trialview
    from ..preview import DEFAULT_SAMPLE, chosen_points, parse_id
    from ..trial import TrialOptions, run_trial

    if ids and sample:
        raise BatchrunError("--id and --sample choose points two ways; give one")
    project, job = one_job(state, job_name)
    options = TrialOptions(use_cache=not no_cache, write=write, max_cost=max_cost,
                           concurrency=concurrency)
    with open_workspace(state, (), no_progress=True, project=project, jobs=[job]) as ws:
        points = chosen_points(ws.selection(job), [parse_id(i) for i in ids],
                               sample or DEFAULT_SAMPLE)
        with ws.locked("try"):
            trial = run_trial(ws, job, points, options,
                              say=lambda line: click.echo(line, err=True))
    if as_json:
        emit_json(trialview.try_json(trial))
    elif sys.stdout.isatty():
        from rich.console import Console

        Console().print(trialview.try_table(trial))
        echo_lines(trialview.summary_lines(trial))
    else:
        echo_lines(trialview.try_lines(trial))
    if trial.failed:
        sys.exit(EXIT_FAILED_RECORDS)
