"""`batchrun apply`: bring the collection up to date with the job specs."""

from __future__ import annotations

import sys

import click

from ..errorhandler import report
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
    partition_option,
    progress_option,
)
from .report import report_option
from .report import write as write_report


@click.command()
@click.argument("paths", nargs=-1, type=click.Path(), metavar="[PATHS | PLAN.json]")
@click.option("--no-wait", is_flag=True, help="Return once batches are submitted; a later "
              "apply collects them (for CI).")
@click.option("--max-cost", type=float, metavar="USD", help="Refuse to submit when the "
              "estimated cost of this run exceeds USD.")
@click.option("--retry-failed", is_flag=True, help="Send again requests that failed for good.")
@click.option("--force", is_flag=True, help="Ignore stamps and the cache: resend everything "
              "selected (costs money). Batches already in flight are awaited, not resent.")
@click.option("--create-vectors", is_flag=True, help="Add a missing output.vector to its "
              "collection (the model's dimension, Cosine) instead of refusing the job.")
@click.option("--strict", is_flag=True, help="Send nothing for a job with a point that cannot "
              "be sent (its template fails, its text is not Unicode, its request is too big); "
              "by default those points fail and the others are sent.")
@report_option
@lock_option
@progress_option
@json_option
@partition_option
@click.pass_obj
@handle_errors
def apply(state: State, paths: tuple[str, ...], no_wait: bool, max_cost: float | None,
          retry_failed: bool, force: bool, create_vectors: bool, strict: bool,
          report_path: str | None,
          no_progress: bool, as_json: bool) -> None:
    """Bring the collection up to date: send what changed, write the results.

    Given a plan saved by `plan -o FILE`, applies exactly that plan: before anything
    is sent or written, it checks that the specs and the data would still make the
    same requests, and refuses, saying what changed, when they would not.

    \b
    Examples:
      batchrun apply                      every job in jobs/
      batchrun apply jobs/tags.yaml       one job
      batchrun apply --no-wait            submit and return (CI); rerun to collect
      batchrun apply --max-cost 5         refuse if the estimate exceeds $5
      batchrun apply --create-vectors     add the named vectors embedding jobs write
      batchrun apply plan.json            what `batchrun plan -o plan.json` showed
      batchrun apply --report             then write report.html (`batchrun report`)
    """
    from .. import tables, views
    from ..apply import apply as run_apply
    from ..workspace import Options

    saved = _saved_plan(state, paths, force=force, retry_failed=retry_failed)
    if saved is not None:
        from ..project import load_project
        from ..savedplan import job_paths

        paths = tuple(job_paths(saved[1], load_project(state.directory).root))
    options = Options(wait=not no_wait, max_cost=max_cost, retry_failed=retry_failed,
                      force=force, create_vectors=create_vectors, strict=strict)
    with open_workspace(state, paths, options, no_progress=no_progress) as ws:
        with ws.locked("apply"):
            if saved is not None:
                from ..savedplan import verify

                verify(ws, saved[1], saved[0])
            before = ws.ledger.jobs()     # the previous run's specs: what this run changed
            outcome = run_apply(ws)
        warnings = ws.empty_warnings({name: run.last.matched
                                      for name, run in outcome.runs.items()})
        # Written whatever the outcome (failed requests, a job refused): the page says why.
        written = write_report(ws, state, report_path, previous=before, every_batch=not paths) \
            if report_path is not None else None
        if as_json:
            emit_json({**views.apply_json(ws, outcome, warnings),
                       **({"report": tables.report_json(written)} if written else {})})
        else:
            echo_lines(views.apply_lines(ws, outcome, warnings)
                       + (tables.report_lines(written) if written else []))
    if outcome.stalled:
        if not as_json:
            report(BatchrunError(
                f"apply stopped with {outcome.in_flight:,} points it could neither send nor "
                "await", hint="rerun apply; if it stops here again, `batchrun status` and "
                "`batchrun plan` say what they wait for (please report it)"),
                as_json=False, debug=state.debug)
        sys.exit(1)
    if outcome.refused:   # a job refused by its budget is an error, though the others ran
        if not as_json:
            for error in outcome.refused.values():
                report(error, as_json=False, debug=False)
        sys.exit(1)
    if outcome.failed or outcome.failed_points:
        sys.exit(EXIT_FAILED_RECORDS)


def _saved_plan(state: State, paths: tuple[str, ...], *, force: bool,
                retry_failed: bool) -> tuple[str, dict] | None:
    """The saved plan named instead of job specs, if one is: (its name, its data)."""
    plans = [p for p in paths if p.endswith(".json")]
    if not plans:
        return None
    if len(paths) != 1:
        raise BatchrunError("a saved plan is applied alone: it names its own jobs",
                            hint=f"batchrun apply {plans[0]}")
    if force or retry_failed:
        raise BatchrunError("a saved plan is applied as it was reviewed; --force and "
                            "--retry-failed would send other requests than it shows",
                            hint="apply the plan without the flag, or the job specs with "
                                 "it (batchrun apply --force)")
    from ..savedplan import load

    return plans[0], load(state.directory / plans[0], plans[0])
