"""`batchrun plan`: what apply would do, and what it would cost."""

from __future__ import annotations

import sys

import click

from . import (
    EXIT_PENDING,
    State,
    echo_lines,
    emit_json,
    handle_errors,
    json_option,
    open_workspace,
    partition_option,
    paths_argument,
    progress_option,
    strict_option,
)


@click.command()
@paths_argument
@click.option("--detailed-exitcode", is_flag=True,
              help="Exit 0 when nothing is to do, 2 when work is pending, 1 on error.")
@strict_option
@click.option("--points", "every_point", is_flag=True,
              help="List every new and changed point's id (default: the first few).")
@click.option("-o", "--out", "out", type=click.Path(dir_okay=False), metavar="FILE",
              help="Also save the plan to FILE, for review: `batchrun apply FILE` applies "
                   "exactly it, or refuses if the specs or the data changed since.")
@progress_option
@json_option
@partition_option
@click.pass_obj
@handle_errors
def plan(state: State, paths: tuple[str, ...], detailed_exitcode: bool, strict: bool,
         every_point: bool, out: str | None, no_progress: bool, as_json: bool) -> None:
    """Show what apply would do, and what it would cost. Spends nothing.

    Says why work is pending: what changed in the spec, which points are new or
    changed (their ids) and which fields changed on them. A job that selects no point
    gets a warning saying why, as far as a sample of its collection can tell.

    \b
    Examples:
      batchrun plan
      batchrun plan jobs/tags.yaml --detailed-exitcode   # for CI: 2 means work pending
      batchrun plan --points --json | jq '.jobs.tags.points.changed.ids'
      batchrun plan -o plan.json && batchrun apply plan.json   # apply what was reviewed
    """
    from .. import views

    with open_workspace(state, paths, no_progress=no_progress) as ws:
        plans = ws.plan(every_point=every_point)
        warnings = ws.empty_warnings({name: p.matched for name, p in plans.items()})
        failing = [job for job in ws.jobs if strict and plans[job.name].point_failures]
        if as_json and not failing:
            emit_json(views.plan_json(ws, plans, warnings))
        elif not as_json:
            echo_lines(views.plan_lines(ws, plans, warnings))
        for job in failing:   # --strict: points that cannot be sent are an error, as in apply
            plans[job.name].raise_point_failures(job)
        if out:
            from ..savedplan import save

            save(state.directory / out, ws, plans, [str(state.directory / p) for p in paths],
                 views.plan_json(ws, plans, warnings))
            if not as_json:
                click.echo(f"Saved this plan to {out}: `batchrun apply {out}` applies exactly "
                           "it, or refuses if the specs or the data change before.")
    if detailed_exitcode and any(not p.done for p in plans.values()):
        sys.exit(EXIT_PENDING)
